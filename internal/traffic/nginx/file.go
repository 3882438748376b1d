package nginx

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// headerLine begins every file cutover writes; a file without it is
// someone else's.
const headerLine = "# Written by cutover: do not edit. cutover refuses to overwrite a file changed by hand."

// statePrefix begins the second line, which records what the blocks
// below say and a checksum of them, so that a restarted cutover knows
// the active slot and sees an edit.
const statePrefix = "# cutover "

// state is what the upstream file says about the app's traffic.
type state struct {
	// Active is the slot production traffic goes to; the stable one
	// during a canary.
	Active string
	// Canary, when set, gets Weight percent of the production traffic.
	Canary string
	Weight int
	// Preview is the slot the preview block points at.
	Preview string
}

// fields writes s as the second line's key=value fields, without the
// checksum.
func (s state) fields() string {
	f := "active=" + s.Active
	if s.Canary != "" {
		f += fmt.Sprintf(" canary=%s weight=%d", s.Canary, s.Weight)
	}
	if s.Preview != "" {
		f += " preview=" + s.Preview
	}
	return f
}

// encode returns the whole file for s and the blocks of body.
func encode(s state, body string) []byte {
	sum := checksum(s.fields(), body)
	return []byte(fmt.Sprintf("%s\n%ssha256=%s %s\n%s", headerLine, statePrefix, sum, s.fields(), body))
}

func checksum(fields, body string) string {
	h := sha256.Sum256([]byte(fields + "\n" + body))
	return hex.EncodeToString(h[:])
}

// errNotOurs and errEdited are why cutover does not touch a file.
var (
	errNotOurs = errors.New("not written by cutover")
	errEdited  = errors.New("changed since cutover wrote it")
)

// decode reads back a file encode wrote; it fails with errNotOurs or
// errEdited when someone else wrote or changed it.
func decode(data []byte) (state, error) {
	header, rest, _ := bytes.Cut(data, []byte("\n"))
	if string(header) != headerLine {
		return state{}, errNotOurs
	}
	line, body, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || !bytes.HasPrefix(line, []byte(statePrefix)) {
		return state{}, errEdited
	}
	var s state
	var sum string
	for _, kv := range strings.Fields(strings.TrimPrefix(string(line), statePrefix)) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "sha256":
			sum = v
		case "active":
			s.Active = v
		case "canary":
			s.Canary = v
		case "weight":
			s.Weight, _ = strconv.Atoi(v)
		case "preview":
			s.Preview = v
		}
	}
	if sum == "" || sum != checksum(s.fields(), string(body)) {
		return state{}, errEdited
	}
	return s, nil
}

// read returns the file at path and what it says; data is nil when
// there is no file yet.
func read(path string) (data []byte, s state, err error) {
	data, err = os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, state{}, nil
	case err != nil:
		return nil, state{}, fmt.Errorf("read the upstream file: %w", err)
	}
	s, err = decode(data)
	switch {
	case errors.Is(err, errNotOurs):
		return nil, state{}, fmt.Errorf("%s was %w, which writes the whole file and overwrites nothing else: "+
			"point traffic.nginx.upstreamFile at a file of cutover's own (and include that one in nginx.conf), or move this one aside", path, err)
	case err != nil:
		return nil, state{}, fmt.Errorf("%s was %w (its checksum no longer matches), and cutover does not overwrite an edit: "+
			"undo the edit, or delete the file so that cutover writes it anew", path, err)
	}
	return data, s, nil
}

// write replaces the file at path with data in one rename, so that nginx
// never reads half of it; data nil removes the file.
func write(path string, data []byte) error {
	if data == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	// The temporary name does not end in .conf, so that an include of
	// conf.d/*.conf never reads it.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write the upstream file: %w", err)
	}
	defer os.Remove(tmp.Name()) // once renamed, there is nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write the upstream file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write the upstream file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the upstream file: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write the upstream file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write the upstream file: %w", err)
	}
	return nil
}

// server is one line of an upstream block.
type server struct {
	addr   string
	weight int
}

// block writes an upstream block named name.
func block(name string, servers []server) string {
	var b strings.Builder
	fmt.Fprintf(&b, "upstream %s {\n", name)
	for _, s := range servers {
		if s.weight > 1 {
			fmt.Fprintf(&b, "    server %s weight=%d;\n", s.addr, s.weight)
		} else {
			fmt.Fprintf(&b, "    server %s;\n", s.addr)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// servers lists endpoints as servers of weight w.
func servers(endpoints []*url.URL, w int) []server {
	out := make([]server, len(endpoints))
	for i, u := range endpoints {
		out[i] = server{addr: hostPort(u), weight: w}
	}
	return out
}

// hostPort is u's address as nginx's server directive takes it, with the
// scheme's port when u names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
