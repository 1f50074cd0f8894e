package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ArchiveSource writes to w one uncompressed tar stream of paths (absolute,
// clean guest paths), each found path a member named like the path without
// its leading "/" (a folder followed by its tree), and returns the paths
// that do not exist. A provider reading a stopped VM's disks is one
// (sdk.FileReader). Nothing it sends is trusted.
type ArchiveSource func(ctx context.Context, paths []string, w io.Writer) (missing []string, err error)

// PullArchive is Pull for a guest that runs no commands, such as a VM that
// is not running, whose files src reads: the same items, results, limits
// and confinement (every write through an os.Root on dir, the same checks
// of each entry), the same all-or-nothing per stream. Items must be
// absolute guest paths. Nested items go in separate calls of src; when a
// stream of several items carries an unsafe entry, each item is fetched
// alone so that the hostile path costs only itself. Other failures of a
// stream are not retried: src is costly (a disk reader to start), and it
// retries itself where that helps.
func PullArchive(ctx context.Context, src ArchiveSource, dir string, items []PullItem, o PullOptions) ([]PullResult, error) {
	res, root, err := startPull(dir, items)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	p := &puller{root: root, o: o, used: &usage{}}
	var todo []*pullState
	for i, it := range items {
		switch m := strings.TrimPrefix(path.Clean("/"+it.Remote), "/"); {
		case !strings.HasPrefix(it.Remote, "/"):
			res[i].Err = fmt.Errorf("copy %s: not an absolute path, which a copy from the disks needs", it.Remote)
		case m == "":
			res[i].Err = fmt.Errorf("copy %s: refusing to copy the guest's whole file system", it.Remote)
		default:
			todo = append(todo, &pullState{res: &res[i], member: m})
		}
	}
	for _, g := range groups(todo) {
		err := ctx.Err()
		if err == nil {
			err = p.archiveGroup(ctx, src, g)
		}
		if err == nil {
			continue
		}
		if len(g) == 1 || !errors.Is(err, ErrUnsafeEntry) {
			for _, s := range g {
				s.res.Err = fmt.Errorf("copy %s: %w", s.res.Remote, err)
			}
			continue
		}
		for _, s := range g {
			if err := p.archiveGroup(ctx, src, []*pullState{s}); err != nil {
				s.res.Err = fmt.Errorf("copy %s: %w", s.res.Remote, err)
			}
		}
	}
	var errs []error
	for i := range res {
		if res[i].Err != nil {
			errs = append(errs, res[i].Err)
		}
	}
	return res, errors.Join(errs...)
}

// archiveGroup copies one group of items from one stream of src, all or
// nothing; the items src reports missing are marked so.
func (p *puller) archiveGroup(ctx context.Context, src ArchiveSource, g []*pullState) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make([]*extractItem, len(g))
	paths := make([]string, len(g))
	for i, s := range g {
		items[i] = &extractItem{member: s.member, name: s.res.Name}
		paths[i] = "/" + s.member
	}
	x := newExtractor(p.root, items, p.o.Limits, p.used, p.o.Skipped)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := readArchive(pr, false, x.add)
		if err == nil {
			err = x.finish()
		}
		if err != nil {
			// Stop the source: its writes fail from now on.
			cancel()
			pr.CloseWithError(err)
		} else {
			_, _ = io.Copy(io.Discard, pr)
		}
		done <- err
	}()
	missing, err := src(ctx, paths, pw)
	if err != nil {
		pw.CloseWithError(err)
	} else {
		pw.Close()
	}
	xerr := <-done
	if xerr == nil && err != nil {
		xerr = fmt.Errorf("read from the disks: %w", err)
	}
	if xerr == nil {
		gone := map[string]bool{}
		for _, m := range missing {
			gone[strings.TrimPrefix(path.Clean("/"+m), "/")] = true
		}
		for i, it := range items {
			switch {
			case gone[it.member] && it.started:
				xerr = fmt.Errorf("/%s was sent and reported missing", it.member)
			case gone[it.member]:
				g[i].res.Missing = true
			case !it.started:
				xerr = fmt.Errorf("nothing was sent for /%s", it.member)
			}
			if xerr != nil {
				break
			}
		}
	}
	if xerr == nil {
		xerr = x.commit()
	}
	if xerr != nil {
		x.abort()
		for _, s := range g {
			s.res.Missing = false
		}
		return xerr
	}
	for i, it := range items {
		g[i].res.Files, g[i].res.Bytes = it.Files, it.Bytes
		if it.empty {
			g[i].res.Err = fmt.Errorf("copy %s: a symbolic link or special file: nothing copied", g[i].res.Remote)
		}
	}
	return nil
}
