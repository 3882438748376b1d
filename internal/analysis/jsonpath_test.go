package analysis

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestJSONPathFindsValues(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"data":{"ok":true,"items":[{"v":1.5},{"v":2}],"odd key":"x"}}`), &doc); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		want any
	}{
		{"", doc},
		{"$", doc},
		{"$.data.ok", true},
		{"{$.data.ok}", true},
		{"$.data.items[1].v", 2.0},
		{"$.data.items[0]", map[string]any{"v": 1.5}},
		{"$.data['odd key']", "x"},
		{`$["data"].ok`, true},
	}
	for _, c := range cases {
		p, err := parseJSONPath(c.path)
		if err != nil {
			t.Fatalf("parse %q: %v", c.path, err)
		}
		got, err := p.find(doc)
		if err != nil {
			t.Fatalf("find %q: %v", c.path, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("find %q = %#v, want %#v", c.path, got, c.want)
		}
	}
}

func TestJSONPathReportsWhereItGotLost(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"data":{"items":[1]}}`), &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"$.data.missing", "$.data.items[3]", "$.data.items.x", "$.data[0]"} {
		p, err := parseJSONPath(path)
		if err != nil {
			t.Fatalf("parse %q: %v", path, err)
		}
		if v, err := p.find(doc); err == nil {
			t.Errorf("find %q = %v, want an error", path, v)
		}
	}
	for _, path := range []string{"data.ok", "$.", "$[x]", "$[1", "$..a"} {
		if _, err := parseJSONPath(path); err == nil {
			t.Errorf("parse %q: want an error", path)
		}
	}
}
