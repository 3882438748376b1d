package daemon

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/store/kube"
)

// declaredPath is the field of a CutoverApp that declares its app.
const declaredPath = "spec.app"

// declaration is the app o declares in spec.app.
func declaration(o kube.AppObject) config.Declaration {
	return config.Declaration{Source: fmt.Sprintf("CutoverApp %s/%s", o.Namespace, o.Name), Path: declaredPath, Name: o.Name, Entry: o.App}
}

// withDeclared returns file with the declared apps added after its own,
// in the order of their names.
func withDeclared(file *config.Config, declared map[string]config.Declaration) (*config.Config, error) {
	cfg := file
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		var err error
		if cfg, err = cfg.WithApp(declared[name]); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// declareAtStart returns file with the apps that the CutoverApps declare
// (kube store only), so that they start with the file's. One that does
// not apply is left out: the watch of the objects reports why in its
// status.
func (d *Daemon) declareAtStart(file *config.Config) *config.Config {
	objs, err := d.store.objects()
	if err != nil {
		d.log.Error("read the apps the CutoverApps declare: they are added once the watch of the CutoverApps sees them", "err", err)
		return file
	}
	cfg := file
	for _, o := range objs {
		if o.App == nil {
			continue
		}
		decl := declaration(o)
		next, err := cfg.WithApp(decl)
		if err != nil {
			d.log.Warn("the app a CutoverApp declares is not applied", "err", err)
			continue
		}
		cfg = next
		d.declared[o.Name] = decl
	}
	return cfg
}

// Declare applies o's spec.app as a reload of the config file would: a
// new app gets its first deploy (or its recorded revision restored), a
// changed one takes the new settings for its next rollout, and one whose
// spec.app was removed is stopped. A spec.app that does not apply changes
// nothing (gitops.Declarer).
func (d *Daemon) Declare(o kube.AppObject) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	applied, ok := d.declared[o.Name]
	switch {
	case o.App == nil && !ok:
		return nil
	case o.App == nil:
		return d.undeclare(o.Name)
	case ok && bytes.Equal(applied.Entry, o.App):
		return nil
	}
	if !d.store.open() {
		return errUpgrading
	}
	others := maps.Clone(d.declared)
	delete(others, o.Name)
	base, err := withDeclared(d.file, others)
	if err != nil {
		return err
	}
	decl := declaration(o)
	cfg, err := base.WithApp(decl)
	if err != nil {
		return err
	}
	d.store.deleted(o.Name, false)
	if err := d.apply(cfg); err != nil {
		return fmt.Errorf("%s: %s not applied, the running config stays: %w", decl.Source, decl.Path, err)
	}
	d.declared[o.Name] = decl
	verb := "added"
	if ok {
		verb = "changed"
	}
	d.log.Info("app "+verb+" as "+decl.Source+" declares it", "app", o.Name)
	return nil
}

// Deleted removes the app of a deleted CutoverApp, as a reload of a
// config without it would: its slots are stopped, and its state, which
// the object held, is gone (gitops.Declarer).
func (d *Daemon) Deleted(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.declared[name]; !ok {
		return
	}
	d.store.deleted(name, true)
	if err := d.undeclare(name); err != nil {
		d.log.Error("remove the app of the deleted CutoverApp "+name, "err", err)
		return
	}
	d.log.Info("app removed with its CutoverApp", "app", name)
}

// undeclare removes a declared app; in router mode its slot Deployments
// are scaled to 0, even one a restart left running. Callers hold d.mu.
func (d *Daemon) undeclare(name string) error {
	others := maps.Clone(d.declared)
	delete(others, name)
	cfg, err := withDeclared(d.file, others)
	if err != nil {
		return err
	}
	removed, _ := d.cfg.App(name)
	if err := d.apply(cfg); err != nil {
		return fmt.Errorf("remove app %s: %w", name, err)
	}
	delete(d.declared, name)
	if removed != nil {
		ctx, cancel := context.WithTimeout(context.Background(), stopRoutedWait)
		defer cancel()
		if err := d.kubes.stopRouted(ctx, *removed); err != nil {
			d.log.Error("scale the slots of the removed app to 0", "app", name, "err", err)
		}
	}
	return nil
}

// stopRoutedWait bounds the scaling to 0 of a removed app's slots.
const stopRoutedWait = 30 * time.Second
