package analysis

import (
	"fmt"
	"strconv"
	"strings"
)

// jsonPath is a minimal JSONPath: $ (the whole document), .field,
// ['field'] and [index], optionally in braces as Argo Rollouts writes it
// ({$.data.ok}).
type jsonPath struct {
	src   string
	steps []pathStep
}

// pathStep is one field name or one array index.
type pathStep struct {
	field string
	index int
	isIdx bool
}

func parseJSONPath(src string) (jsonPath, error) {
	p := jsonPath{src: src}
	s := strings.TrimSpace(src)
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return p, nil
	}
	if s[0] != '$' {
		return p, fmt.Errorf("jsonPath %q must start with $, such as $.data.value", src)
	}
	s = s[1:]
	for s != "" {
		switch s[0] {
		case '.':
			end := strings.IndexAny(s[1:], ".[") + 1
			if end == 0 {
				end = len(s)
			}
			if end == 1 {
				return p, fmt.Errorf("jsonPath %q has an empty field name", src)
			}
			p.steps = append(p.steps, pathStep{field: s[1:end]})
			s = s[end:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return p, fmt.Errorf("jsonPath %q has [ without ]", src)
			}
			inner := s[1:end]
			s = s[end+1:]
			if len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') && inner[len(inner)-1] == inner[0] {
				p.steps = append(p.steps, pathStep{field: inner[1 : len(inner)-1]})
				continue
			}
			i, err := strconv.Atoi(inner)
			if err != nil || i < 0 {
				return p, fmt.Errorf("jsonPath %q: [%s] is neither an index (0, 1, ...) nor a quoted field name", src, inner)
			}
			p.steps = append(p.steps, pathStep{index: i, isIdx: true})
		default:
			return p, fmt.Errorf("jsonPath %q: unexpected %q; write .field, ['field'] or [index]", src, s[0])
		}
	}
	return p, nil
}

// find walks doc (as encoding/json decodes into any) along the path.
func (p jsonPath) find(doc any) (any, error) {
	at := "$"
	for _, st := range p.steps {
		if st.isIdx {
			arr, ok := doc.([]any)
			if !ok {
				return nil, fmt.Errorf("jsonPath %q: %s is %s, not an array", p.src, at, kindOf(doc))
			}
			if st.index >= len(arr) {
				return nil, fmt.Errorf("jsonPath %q: %s has %d elements, no index %d", p.src, at, len(arr), st.index)
			}
			doc, at = arr[st.index], fmt.Sprintf("%s[%d]", at, st.index)
			continue
		}
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("jsonPath %q: %s is %s, not an object", p.src, at, kindOf(doc))
		}
		v, ok := obj[st.field]
		if !ok {
			return nil, fmt.Errorf("jsonPath %q: %s has no field %q", p.src, at, st.field)
		}
		doc, at = v, at+"."+st.field
	}
	return doc, nil
}

// kindOf names a decoded JSON value's kind for messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("a %T", v)
}
