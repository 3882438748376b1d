package config

import (
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func TestDurationReadsGoDurationStrings(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	for src, want := range map[string]time.Duration{
		`d: 30s`:     30 * time.Second,
		`d: "1m30s"`: 90 * time.Second,
		`d: 250ms`:   250 * time.Millisecond,
		`d: -2s`:     -2 * time.Second,
	} {
		if err := yaml.Unmarshal([]byte(src), &v); err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if v.D.D() != want {
			t.Errorf("%s: got %s, want %s", src, v.D, want)
		}
	}
}

func TestDurationRejectsPlainNumbersWithAHint(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	err := yaml.Unmarshal([]byte("d: 30\n"), &v)
	if err == nil || !strings.Contains(err.Error(), `write "30s"`) {
		t.Errorf("Unmarshal of a plain number: err = %v, want a hint to write \"30s\"", err)
	}
}

func TestDurationTextRoundTrips(t *testing.T) {
	d := Duration(90 * time.Second)
	text, err := d.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var back Duration
	if err := back.UnmarshalText(text); err != nil {
		t.Fatalf("UnmarshalText(%q): %v", text, err)
	}
	if back != d {
		t.Errorf("round trip of %s gave %s", d, back)
	}
	if err := back.UnmarshalText([]byte("soon")); err == nil {
		t.Error(`UnmarshalText("soon") succeeded`)
	}
}
