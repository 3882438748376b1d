package config

import (
	"fmt"
	"reflect"
	"slices"
)

// Declaration is an app declared outside the config file: its entry,
// written as one under apps: but without name, held by another source
// such as a CutoverApp object's spec.app.
type Declaration struct {
	// Source names where the entry is, for problems: such as
	// "CutoverApp default/web".
	Source string
	// Path is the entry's field within Source, such as "spec.app"; the
	// problems' messages start with it.
	Path string
	// Name is the app's name.
	Name string
	// Entry is the app's entry, YAML or JSON.
	Entry []byte
}

// WithApp returns a copy of c with the app that decl declares added after
// c's apps. The entry is checked as Parse checks an app of the file (same
// keys, defaults and validation), and against c: its name and listeners
// must not clash with c's apps. When it is invalid the error is a
// Problems of decl.Source, without lines, each message starting with the
// field's path under decl.Path; c is unchanged either way.
func (c *Config) WithApp(decl Declaration) (*Config, error) {
	d := newDocument(decl.Source)
	d.unplaced = true
	body, single, err := d.parseBody(decl.Entry)
	if err != nil {
		return nil, err
	}
	path := decl.Path
	d.check(path, nil, body, reflect.TypeFor[App]())
	d.checked = true
	if !single {
		return nil, d.problems
	}
	var a App
	if err := d.decode(body, &a); err != nil {
		return nil, err
	}
	if d.written(path + ".name") {
		d.add(path+".name", fmt.Sprintf("remove it: the app's name is %q, the name of %s", decl.Name, decl.Source),
			"an app declared here takes its name from where it is declared")
	}
	a.Name, a.Declared = decl.Name, &decl
	d.fillEmptyBlocks(reflect.ValueOf(&a).Elem(), path)
	a.setDefaults(d, path, c.baseDir())
	// c is valid: checking its templates again only indexes them.
	a.validate(d, path, c.validateAnalysisTemplates(newDocument(c.File)))
	if a.TLS != nil {
		a.TLS.validate(d, path+".tls", &a, c.ACME)
		if a.TLS.ACME && c.ACME != nil && c.ACME.Email == "" {
			d.add(path+".tls.acme", fmt.Sprintf("write acme.email in %s, the address the CA may warn about expiring certificates", c.File),
				"acme: true needs acme.email")
		}
	}
	if other, ok := c.App(a.Name); ok {
		where := c.File
		if other.Declared != nil {
			where = other.Declared.Source
		}
		d.add(path, fmt.Sprintf("rename one of them, or remove the app from %s", where), "app %q is already defined in %s", a.Name, where)
	}
	with := *c
	with.Apps = append(slices.Clone(c.Apps), a)
	all := with.listeners()
	for j := range all {
		if all[j].source == decl.Source {
			checkClash(d, all[j], all[:j])
		}
	}
	if len(d.problems) > 0 {
		return nil, d.problems
	}
	return &with, nil
}
