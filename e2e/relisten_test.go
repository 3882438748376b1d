package e2e

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/daemon/daemontest"
)

func TestReloadCanMoveAnAppToAnotherAddressAndBack(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	original, err := os.ReadFile(s.configPath())
	if err != nil {
		t.Fatal(err)
	}
	other := "127.0.0.1:" + itoa(daemontest.FreePort(t))
	moved := strings.ReplaceAll(string(original), s.Listen, other)
	if err := os.WriteFile(s.configPath(), []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustCLI(t, "reload")
	waitServing(t, "http://"+other+"/", "v1", 10*time.Second)

	// The address the app left gets no answer: refused or closed at
	// once, never left waiting.
	conn, err := net.DialTimeout("tcp", s.Listen, time.Second)
	if err == nil {
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		var b [1]byte
		if _, err := conn.Read(b[:]); err == nil || isTimeout(err) {
			t.Errorf("the address the app left still answers or hangs: %v", err)
		}
		conn.Close()
	}

	if err := os.WriteFile(s.configPath(), original, 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustCLI(t, "reload")
	waitServing(t, s.appURL(), "v1", 10*time.Second)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
