package config

import (
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// rewrite replaces every value below n (mapping values, list items, the
// values of anchors and tags) by what f returns for it, depth first from
// the top.
func rewrite(n ast.Node, f func(ast.Node) ast.Node) {
	switch v := n.(type) {
	case *ast.MappingNode:
		for _, mv := range v.Values {
			rewrite(mv, f)
		}
	case *ast.MappingValueNode:
		v.Value = f(v.Value)
		rewrite(v.Value, f)
	case *ast.SequenceNode:
		for i := range v.Values {
			v.Values[i] = f(v.Values[i])
			rewrite(v.Values[i], f)
		}
	case *ast.AnchorNode:
		v.Value = f(v.Value)
		rewrite(v.Value, f)
	case *ast.TagNode:
		v.Value = f(v.Value)
		rewrite(v.Value, f)
	}
}

// joinColonScalars undoes a quirk of the YAML parser: inside a flow list
// nested in a flow mapping, as in {upstreams: [http://127.0.0.1:8080]}, it
// reads a plain scalar with a ':' in it as a one-entry mapping. YAML makes
// ':' a key indicator only when a space (or the end of the value) follows
// it, or after a quoted key, so a plain key glued to its value by ':' is
// one string, as every other YAML parser reads it.
func joinColonScalars(n ast.Node) ast.Node {
	pairs, ok := mappingPairs(n)
	if !ok || len(pairs) != 1 {
		return n
	}
	key, colon, value := pairs[0].Key.GetToken(), pairs[0].Start, pairs[0].Value
	if _, scalar := value.(ast.ScalarNode); !scalar || key == nil || colon == nil || value.GetToken() == nil {
		return n
	}
	vt := value.GetToken()
	if key.Type != token.StringType || key.Position == nil || colon.Position == nil || vt.Position == nil ||
		vt.Type == token.SingleQuoteType || vt.Type == token.DoubleQuoteType {
		return n
	}
	glued := key.Position.Line == colon.Position.Line && colon.Position.Line == vt.Position.Line &&
		key.Position.Column+len([]rune(key.Value)) == colon.Position.Column &&
		colon.Position.Column+1 == vt.Position.Column
	if !glued {
		return n
	}
	text := key.Value + ":" + vt.Value
	tk := token.New(text, text, key.Position)
	tk.Type = token.StringType
	return ast.String(tk)
}

// nullFor returns the null that stands in for a rejected value at tk.
func nullFor(tk *token.Token) ast.Node {
	return ast.Null(token.New("null", "null", tk.Position))
}
