package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// document is one parsed config file checked against the Config schema. It
// remembers where every field was written, so later checks can point at
// the line to fix and defaults can tell "absent" from "written as zero".
type document struct {
	file  string
	nodes map[string]located // by path, such as "apps[1].health.interval"
	// anchors maps anchor names to their values, filled in document order
	// so that an alias always finds the anchor written before it.
	anchors anchorRecorder
	// merging holds the mappings being merged by "<<" right now, to stop
	// a mapping that merges itself.
	merging map[ast.Node]bool
	// rejected holds the values of the wrong type, by path: they are
	// left out of the decoded Config so the checks after decoding still
	// run, and those checks report nothing more about these fields. The
	// field an unknown one likely meant is here too, with a nil value.
	rejected map[string]ast.Node
	// checked is set once the schema check is over: problems found after
	// it defer to the rejected values.
	checked bool
	// unplaced drops lines and columns from the problems: the source has
	// none worth pointing at (JSON of one object's field).
	unplaced bool
	problems Problems
}

func newDocument(file string) *document {
	return &document{file: file, nodes: map[string]located{}, anchors: anchorRecorder{}, merging: map[ast.Node]bool{},
		rejected: map[string]ast.Node{}}
}

// located is one field as written: the key that names it (nil for list
// items and the root) and its value (after resolving anchors and aliases).
type located struct {
	key   *token.Token
	value ast.Node
}

// maxAliasChain bounds how many anchors, aliases and tags wrap one value.
const maxAliasChain = 16

var (
	durationType    = reflect.TypeFor[Duration]()
	podTemplateType = reflect.TypeFor[PodTemplate]()
	countType       = reflect.TypeFor[IntOrPercent]()
)

// check walks body against the type t, recording each field's position and
// a problem for every unknown field and every value of the wrong kind.
// Unlike a strict decoder, it does not stop at the first one.
func (d *document) check(path string, key *token.Token, n ast.Node, t reflect.Type) {
	n = d.resolve(path, n)
	d.nodes[path] = located{key: key, value: n}
	if isNull(n) {
		return
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		if _, err := durationFromValue(scalarValue(n)); err != nil {
			d.addError(path, err)
			d.rejected[path] = n
		}
	case t == countType:
		if _, err := intOrPercentFromValue(scalarValue(n)); err != nil {
			d.addError(path, err)
			d.rejected[path] = n
		}
	case t == podTemplateType:
		d.checkPodTemplate(path, n)
	case t.Kind() == reflect.Struct:
		d.checkStruct(path, n, t)
	case t.Kind() == reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			d.wrongKind(path, n, "write a YAML list, one \"- item\" per line or [a, b]", "expected a list, found %s", describe(n))
			return
		}
		for i, item := range seq.Values {
			d.check(fmt.Sprintf("%s[%d]", path, i), nil, item, t.Elem())
		}
	case t.Kind() == reflect.Map:
		d.checkMap(path, n, t)
	case t.Kind() == reflect.String:
		d.checkString(path, n)
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		if _, ok := n.(*ast.IntegerNode); !ok {
			d.badValue(path, n, "write a number without quotes, such as 2", "%s is not a whole number", describe(n))
		}
	case t.Kind() == reflect.Float64:
		switch n.(type) {
		case *ast.IntegerNode, *ast.FloatNode:
		default:
			d.badValue(path, n, "write a number without quotes, such as 0.5", "%s is not a number", describe(n))
		}
	case t.Kind() == reflect.Bool:
		if _, ok := n.(*ast.BoolNode); !ok {
			d.badValue(path, n, "write true or false without quotes", "%s is not true or false", describe(n))
		}
	}
}

// checkStruct checks a mapping against the fields of struct type t.
func (d *document) checkStruct(path string, n ast.Node, t reflect.Type) {
	pairs, ok := mappingPairs(n)
	if !ok {
		d.wrongKind(path, n, "write one \"field: value\" per line, indented below the key", "expected a mapping with fields %s, found %s",
			strings.Join(fieldNames(t), ", "), describe(n))
		return
	}
	for _, p := range pairs {
		if p.Key.IsMergeKey() {
			d.checkMerge(path, p.Value, t)
			continue
		}
		name := p.Key.GetToken().Value
		field, ok := fieldByName(t, name)
		if !ok {
			d.unknownField(path, p, t)
			continue
		}
		d.check(join(path, name), p.Key.GetToken(), p.Value, field.Type)
	}
}

// checkMap checks a mapping of names to values of map type t, such as
// env or headers.
func (d *document) checkMap(path string, n ast.Node, t reflect.Type) {
	pairs, ok := mappingPairs(n)
	if !ok {
		d.wrongKind(path, n, "write one \"NAME: value\" per line", "expected a mapping of names to values, found %s", describe(n))
		return
	}
	for _, p := range pairs {
		if p.Key.IsMergeKey() {
			d.checkMerge(path, p.Value, t)
			continue
		}
		name := p.Key.GetToken().Value
		d.check(join(path, name), p.Key.GetToken(), p.Value, t.Elem())
	}
}

// checkMapping checks a mapping against t, a struct or map type.
func (d *document) checkMapping(path string, n ast.Node, t reflect.Type) {
	if t.Kind() == reflect.Map {
		d.checkMap(path, n, t)
		return
	}
	d.checkStruct(path, n, t)
}

// checkMerge checks the mappings pulled in by a "<<" merge key as if
// their entries were written at path; t is the struct or map type there.
func (d *document) checkMerge(path string, n ast.Node, t reflect.Type) {
	n = d.resolve(path, n)
	if n == nil {
		return
	}
	if d.merging[n] {
		d.add(path, "merge a separate anchored mapping instead", "a \"<<\" merge pulls in the mapping that contains it")
		return
	}
	d.merging[n] = true
	defer delete(d.merging, n)
	if seq, ok := n.(*ast.SequenceNode); ok {
		for _, item := range seq.Values {
			d.checkMapping(path, d.resolve(path, item), t)
		}
		return
	}
	d.checkMapping(path, n, t)
}

// checkString accepts any scalar whose text survives as a string: a
// version written as 1.10 would be read as the number 1.1, so it must be
// quoted.
func (d *document) checkString(path string, n ast.Node) {
	switch n.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		return
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		var s string
		text := n.GetToken().Value
		if err := yaml.NodeToValue(n, &s); err != nil || s != text {
			d.badValue(path, n, fmt.Sprintf("quote it: write \"%s\"", text), "%s would be read as %q", text, s)
		}
	default:
		d.badValue(path, n, "write a single value, quoted if it contains special characters", "expected text, found %s", describe(n))
	}
}

// unknownField reports a key that the struct type t at path has no field
// for, suggesting the closest field name and listing them all.
func (d *document) unknownField(path string, p *ast.MappingValueNode, t reflect.Type) {
	d.skip(p.Value)
	name := p.Key.GetToken().Value
	names := fieldNames(t)
	hint := "allowed fields here: " + strings.Join(names, ", ")
	if best := closest(name, names); best != "" {
		hint = fmt.Sprintf("did you mean `%s`? (%s)", best, hint)
		// The field meant is likely missing now; saying so would repeat
		// this problem.
		d.rejected[join(path, best)] = nil
	}
	d.problems = append(d.problems, d.problemAt(p.Key.GetToken(), prefixed(path, fmt.Sprintf("unknown field %q", name)), hint))
}

// wrongKind reports a value at path that is not of the kind its field
// needs, such as a mapping where a list belongs.
func (d *document) wrongKind(path string, n ast.Node, hint, format string, args ...any) {
	d.skip(n)
	d.badValue(path, n, hint, format, args...)
}

// badValue reports the value n at path as of the wrong type and leaves it
// out of the decoded Config.
func (d *document) badValue(path string, n ast.Node, hint, format string, args ...any) {
	d.add(path, hint, format, args...)
	d.rejected[path] = n
}

// skip records the anchors inside a value that will not be checked, so
// that aliases to them later in the file still resolve.
func (d *document) skip(n ast.Node) {
	if n != nil {
		ast.Walk(d.anchors, n)
	}
}

// anchorRecorder maps anchor names to the values they mark.
type anchorRecorder map[string]ast.Node

// Visit records n if it is an anchor; it implements ast.Visitor.
func (r anchorRecorder) Visit(n ast.Node) ast.Visitor {
	if a, ok := n.(*ast.AnchorNode); ok {
		r[a.Name.GetToken().Value] = a.Value
	}
	return r
}

// resolve unwraps anchors, aliases and tags around n, remembering anchors
// for later aliases.
func (d *document) resolve(path string, n ast.Node) ast.Node {
	for range maxAliasChain {
		switch v := n.(type) {
		case *ast.AnchorNode:
			d.anchors[v.Name.GetToken().Value] = v.Value
			n = v.Value
		case *ast.AliasNode:
			name := v.Value.GetToken().Value
			target, ok := d.anchors[name]
			if !ok {
				d.problems = append(d.problems, d.problemAt(v.GetToken(),
					prefixed(path, fmt.Sprintf("alias *%s has no anchor &%s before it", name, name)),
					"define the anchor earlier in the file"))
				return nil
			}
			n = target
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
	return n
}

// addError records err, a fieldError or a decoder message, for path.
func (d *document) addError(path string, err error) {
	msg, hint := err.Error(), ""
	var fe fieldError
	if errors.As(err, &fe) {
		msg, hint = fe.msg, fe.hint
	}
	d.record(path, prefixed(path, msg), hint)
}

// add records a problem with the field at path, positioned there; format
// and args make the message after the path.
func (d *document) add(path, hint, format string, args ...any) {
	d.record(path, prefixed(path, fmt.Sprintf(format, args...)), hint)
}

// record adds a problem about the field at path, unless a value of the
// wrong type at, inside or around that field was already reported: a
// check that never saw that value would only repeat it ("missing").
func (d *document) record(path, msg, hint string) {
	for p := range d.rejected {
		if d.checked && (within(path, p) || within(p, path)) {
			return
		}
	}
	d.problems = append(d.problems, d.problem(path, msg, hint))
}

// within reports whether path is inner or inside it.
func within(path, inner string) bool {
	if !strings.HasPrefix(path, inner) {
		return false
	}
	rest := path[len(inner):]
	return inner == "" || rest == "" || rest[0] == '.' || rest[0] == '['
}

// prefixed starts msg with the path it is about, when there is one.
func prefixed(path, msg string) string {
	if path == "" {
		return msg
	}
	return path + ": " + msg
}

// problem builds a Problem positioned at path, or at the nearest enclosing
// field that was written when path itself was not.
func (d *document) problem(path, msg, hint string) Problem {
	for p := path; ; p = parent(p) {
		if loc, ok := d.nodes[p]; ok {
			return d.problemAt(loc.position(), msg, hint)
		}
		if p == "" {
			return d.problemAt(nil, msg, hint)
		}
	}
}

// problemAt builds a Problem at tk; a nil tk means the top of the file.
func (d *document) problemAt(tk *token.Token, msg, hint string) Problem {
	if d.unplaced {
		return Problem{File: d.file, Message: msg, Hint: hint}
	}
	p := Problem{File: d.file, Line: 1, Column: 1, Message: msg, Hint: hint}
	if tk != nil && tk.Position != nil {
		p.Line, p.Column = tk.Position.Line, tk.Position.Column
	}
	return p
}

// present reports whether the file wrote the field at path, even with no
// value, as in "pause:".
func (d *document) present(path string) bool {
	_, ok := d.nodes[path]
	return ok
}

// written reports whether path was given a non-null value in the file,
// of the right type.
func (d *document) written(path string) bool {
	loc, ok := d.nodes[path]
	_, rejected := d.rejected[path]
	return ok && !isNull(loc.value) && !rejected
}

// position is where a problem with this field should point: a scalar's
// value, else the key that names the field, else the first key of a
// mapping that is a list item.
func (l located) position() *token.Token {
	switch v := l.value.(type) {
	case ast.ScalarNode:
		if !isNull(v) {
			return v.GetToken()
		}
	case *ast.MappingNode:
		if l.key == nil && len(v.Values) > 0 {
			return v.Values[0].Key.GetToken()
		}
	case *ast.MappingValueNode:
		if l.key == nil {
			return v.Key.GetToken()
		}
	}
	if l.key != nil {
		return l.key
	}
	if l.value != nil {
		return l.value.GetToken()
	}
	return nil
}

// mappingPairs returns the key/value pairs of a mapping node; goccy gives a
// one-key mapping as a bare MappingValueNode.
func mappingPairs(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}, true
	}
	return nil, false
}

// scalarValue returns the Go value of a scalar node, or the node itself
// when it is not a scalar, so callers report it as the wrong kind.
func scalarValue(n ast.Node) any {
	if s, ok := n.(ast.ScalarNode); ok {
		return s.GetValue()
	}
	return describe(n)
}

// describe names a node's value for messages: its text if a scalar, else
// its kind.
func describe(n ast.Node) string {
	switch v := n.(type) {
	case nil:
		return "nothing"
	case *ast.StringNode:
		return fmt.Sprintf("%q", v.Value)
	case ast.ScalarNode:
		return v.GetToken().Value
	case *ast.SequenceNode:
		return "a list"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	}
	return "a " + strings.ToLower(n.Type().String())
}

func isNull(n ast.Node) bool {
	return n == nil || n.Type() == ast.NullType
}

// fieldByName finds the field of struct type t whose yaml name is name.
func fieldByName(t reflect.Type, name string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if yamlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fieldNames lists the yaml names of t's fields in declaration order.
func fieldNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if n := yamlName(f); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// yamlName is the key a field is written as, or "" when it is not read
// from YAML.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// closest returns the candidate nearest to name by edit distance (ignoring
// case), or "" when none is near enough to be a likely typo.
func closest(name string, candidates []string) string {
	best, bestDist := "", len(name)/2+1
	for _, c := range candidates {
		if dist := editDistance(strings.ToLower(name), strings.ToLower(c)); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// join appends a field name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// parent strips the last field name or index from a path.
func parent(path string) string {
	i := max(strings.LastIndexByte(path, '.'), strings.LastIndexByte(path, '['))
	if i < 0 {
		return ""
	}
	return path[:i]
}
