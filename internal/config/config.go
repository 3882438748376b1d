// Package config reads cutover.yaml: it parses the file, fills in defaults
// and checks it the way `nginx -t` does, reporting every problem at once
// with the file, line and column to fix and a hint on what to write.
//
// Load and Parse are the entry points. Their error, when the file is
// invalid, is a Problems value; anything else (such as a missing file) is
// an ordinary error. A Config they return has every default applied, so
// callers never need to know the defaults themselves.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Load reads, parses, defaults and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses, defaults and validates config data already read; file
// names the source in problems and is the base for relative process
// directories. When the data is invalid the error is a Problems listing
// every problem found.
func Parse(file string, data []byte) (*Config, error) {
	d := newDocument(file)
	body, single, err := d.parseBody(data)
	if err != nil {
		return nil, err
	}
	d.check("", nil, body, reflect.TypeFor[Config]())
	d.checked = true
	if !single {
		// Which document was meant is anyone's guess: check no further.
		d.problems.sortByPosition()
		return nil, d.problems
	}

	var c Config
	if err := d.decode(body, &c); err != nil {
		return nil, err
	}
	c.File = file
	c.setDefaults(d)
	c.validate(d)
	if len(d.problems) > 0 {
		d.problems.sortByPosition()
		return nil, d.problems
	}
	return &c, nil
}

// parseBody parses data, a YAML (or JSON) document, into the node to
// check. A syntax error is returned as Problems; more than one document
// is recorded as a problem, and single is then false.
func (d *document) parseBody(data []byte) (body ast.Node, single bool, err error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, false, Problems{d.yamlProblem(err)}
	}
	if len(f.Docs) > 0 {
		body = f.Docs[0].Body
	}
	if len(f.Docs) > 1 {
		d.problems = append(d.problems, d.problemAt(documentStart(f.Docs[1]),
			"the file holds more than one YAML document", "keep the whole config in one document; remove the \"---\" separator"))
	}
	if body != nil {
		body = joinColonScalars(body)
		rewrite(body, joinColonScalars)
	}
	return body, len(f.Docs) <= 1, nil
}

// App returns the app called name.
func (c *Config) App(name string) (*App, bool) {
	for i := range c.Apps {
		if c.Apps[i].Name == name {
			return &c.Apps[i], true
		}
	}
	return nil, false
}

// AutoPromotion reports whether a new revision of a is promoted as soon as
// it is ready and its smoke checks pass. It is true unless the blue-green
// strategy sets autoPromotion to false; a canary ignores it, since its
// pause steps decide when a human must step in.
func (a *App) AutoPromotion() bool {
	bg := a.Strategy.BlueGreen
	return bg == nil || bg.AutoPromotion == nil || *bg.AutoPromotion
}

// AbortOnProgressDeadline reports whether a rollout of a that makes no
// progress for ProgressDeadline is aborted (true, the default) rather than
// paused for a human.
func (a *App) AbortOnProgressDeadline() bool {
	return a.ProgressDeadlineAbort == nil || *a.ProgressDeadlineAbort
}

// decode fills c, a *Config or *App, from body. Values of the wrong type that the schema check
// reported are left out, so that the checks after decoding can still report
// every other problem in the same run; the error is then the problems
// found so far if the rest cannot be decoded either.
func (d *document) decode(body ast.Node, c any) error {
	if body == nil {
		return nil
	}
	// Duplicate keys were rejected when parsing; allowing them here lets a
	// key override one pulled in by a "<<" merge, as YAML intends.
	opts := []yaml.DecodeOption{yaml.AllowDuplicateMapKey()}
	if len(d.problems) == 0 {
		// The schema check reports every unknown field and wrongly typed
		// value; the strict decoder is a second line of defence for
		// anything it let through.
		opts = append(opts, yaml.DisallowUnknownField())
	} else {
		rejected := map[ast.Node]bool{}
		for _, n := range d.rejected {
			if n != nil {
				rejected[n] = true
			}
		}
		drop := func(n ast.Node) ast.Node {
			if rejected[n] {
				return nullFor(n.GetToken())
			}
			return n
		}
		body = drop(body)
		rewrite(body, drop)
	}
	if err := yaml.NodeToValue(body, c, opts...); err != nil {
		if len(d.problems) > 0 {
			d.problems.sortByPosition()
			return d.problems
		}
		return Problems{d.yamlProblem(err)}
	}
	return nil
}

// yamlProblem turns a goccy parse or decode error into a Problem at its
// token.
func (d *document) yamlProblem(err error) Problem {
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg := ye.GetMessage()
		// goccy reports a repeated key as a syntax error.
		if strings.Contains(msg, "already defined") {
			return d.problemAt(ye.GetToken(), msg, "keep only one of them")
		}
		return d.problemAt(ye.GetToken(), msg, "fix the YAML here: indent with spaces, close brackets and quotes, and quote values that contain \": \", "+
			"and, inside [ ] or { }, values with a bracket or a comma, such as \"127.0.0.1:${PORT}\"")
	}
	return d.problemAt(nil, err.Error(), "")
}

// documentStart is the first token of a document, for pointing at it.
func documentStart(doc *ast.DocumentNode) *token.Token {
	if doc.Start != nil {
		return doc.Start
	}
	if doc.Body != nil {
		return doc.Body.GetToken()
	}
	return nil
}
