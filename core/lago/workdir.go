package lago

import (
	"context"
	"os"
	"path/filepath"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/prefix"
)

// DestroyOptions say what Client.Destroy removes.
type DestroyOptions struct {
	// Path is a prefix or a workdir; "" finds one as the lago command
	// does (the configuration's, else from the current folder).
	Path string
	// AllPrefixes removes every prefix of the workdir, and the workdir.
	AllPrefixes bool
	// Confirm, when set, is asked with the path about to be removed;
	// false stops the destroy (an error says so).
	Confirm func(path string) bool
}

// Destroy removes an environment (or a whole workdir) completely: VMs,
// networks, leases, files. It also removes what a killed init left, even
// a first init killed before the workdir's `current` link existed.
func (c *Client) Destroy(ctx context.Context, o DestroyOptions) error {
	if err := c.check(); err != nil {
		return err
	}
	confirm := func(path string) error {
		if o.Confirm != nil && !o.Confirm(path) {
			return errs.Userf("not destroying %s", path)
		}
		return nil
	}
	fo := c.findOptions(o.Path)
	if o.AllPrefixes {
		w, err := prefix.FindWorkdir(prefix.FindOptions{WorkdirPath: fo.WorkdirPath})
		if err != nil {
			return errs.User(err)
		}
		if err := checkOwner(w.Path); err != nil {
			return err
		}
		if err := confirm(w.Path); err != nil {
			return err
		}
		return c.mgr.DestroyAll(ctx, w.Path)
	}
	p, err := prefix.Find(fo)
	if err != nil {
		// A first init killed before it linked `current` leaves a
		// workdir that discovery cannot see; destroy removes that too.
		w := fo.WorkdirPath
		if w == "" && fo.PrefixPath == "" {
			w = ".lago"
		}
		if w == "" {
			return errs.User(err)
		}
		if _, serr := os.Lstat(filepath.Join(w, prefix.CurrentLink)); serr == nil {
			return errs.User(err)
		}
		if st, serr := os.Stat(w); serr != nil || !st.IsDir() {
			return errs.User(err)
		}
		abs, aerr := filepath.Abs(w)
		if aerr != nil {
			return errs.User(err)
		}
		if err := checkOwner(abs); err != nil {
			return err
		}
		if err := confirm(abs); err != nil {
			return err
		}
		return c.mgr.DestroyUnlinkedWorkdir(ctx, abs)
	}
	if err := checkOwner(p.Path); err != nil {
		return err
	}
	if err := confirm(p.Path); err != nil {
		return err
	}
	return c.mgr.DestroyPrefix(ctx, p)
}

// findOptions says where to look for path ("" means the configuration's
// prefix or workdir, else the current folder upwards).
func (c *Client) findOptions(path string) prefix.FindOptions {
	if path == "" {
		return prefix.FindOptions{PrefixPath: c.cfg.PrefixPath, WorkdirPath: c.cfg.WorkdirPath, PrefixName: c.cfg.PrefixName}
	}
	if prefix.IsPrefix(path) || !isWorkdir(path) {
		return prefix.FindOptions{PrefixPath: path}
	}
	return prefix.FindOptions{WorkdirPath: path}
}

// Workdir finds the workdir at path ("" as the lago command does).
func (c *Client) Workdir(path string) (string, error) {
	if path == "" {
		path = c.cfg.WorkdirPath
	}
	w, err := prefix.FindWorkdir(prefix.FindOptions{WorkdirPath: path})
	if err != nil {
		return "", errs.User(err)
	}
	return w.Path, nil
}

// Prefixes lists the prefixes of a workdir by name.
func (c *Client) Prefixes(workdir string) ([]string, error) {
	return env.ListPrefixes(workdir)
}

// SetCurrent points the workdir's `current` at the prefix name.
func (c *Client) SetCurrent(workdir, name string) error {
	return env.SetCurrent(workdir, name)
}

// Orphan is a provider object (domain, network, volume) whose prefix is
// gone; Kept says why one is left alone (another host's or user's).
type Orphan = env.Orphan

// Orphans asks every configured provider for the objects lago tagged
// whose prefix no longer exists.
func (c *Client) Orphans(ctx context.Context) ([]Orphan, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.mgr.Orphans(ctx)
}

// RemoveOrphans removes the orphans Orphans found (not the kept ones),
// judging each again just before.
func (c *Client) RemoveOrphans(ctx context.Context, orphans []Orphan) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.mgr.RemoveOrphans(ctx, orphans)
}
