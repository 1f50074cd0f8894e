// Package lease hands out the /24 subnets that lago's NAT networks use, in a
// store on disk shared by every lago process on the host (and by the original
// Python Lago, whose format and lock this package keeps).
//
// The store is a folder (default /var/lib/lago/subnets) with one file per
// leased subnet, named after the subnet's third octet ("201.lease"), holding
// the JSON array ["/abs/path/to/prefix/uuid", "<uuid>"]. Every change happens
// under an exclusive flock on "subnet-lease.lock" in that folder. A lease is
// live only while the uuid file it names still exists and still holds that
// uuid, so the leases of a prefix deleted by hand are taken over.
package lease

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lago-go/lago/core/lease/flock"
)

const (
	// DefaultDir is where the original Lago keeps its leases.
	DefaultDir = "/var/lib/lago/subnets"
	// LockName is the lock file inside the store folder.
	LockName = "subnet-lease.lock"
	// LockMode and FileMode are the modes of the lock and of lease files,
	// set with chmod so the creator's umask cannot narrow them: the next
	// user of a shared store must be able to read and replace them.
	LockMode = 0o664
	FileMode = 0o664
	// DefaultLockTimeout bounds the wait for the store lock when Store.LockTimeout is 0.
	DefaultLockTimeout = time.Minute

	// FirstOctet and LastOctet bound the third octet of leasable subnets:
	// 192.168.200.0/24 to 192.168.255.0/24.
	FirstOctet = 200
	LastOctet  = 255
)

// ErrFull is wrapped by the error of an acquisition that found no free subnet.
var ErrFull = errors.New("no free subnet")

// ErrTaken is wrapped by the error of an acquisition asking for a subnet that
// another live prefix holds.
var ErrTaken = errors.New("subnet already leased")

// ErrOutOfRange is wrapped when a requested gateway lies outside 192.168.200.0-192.168.255.255.
var ErrOutOfRange = errors.New("outside the leasable range 192.168.200.0-192.168.255.255")

// Store is a lease store folder. The zero LockTimeout means DefaultLockTimeout.
type Store struct {
	Dir         string
	LockTimeout time.Duration

	// syncDir, when set (by tests), replaces fsyncDir.
	syncDir func(dir string) error
}

// fsyncDir flushes a folder's entries to disk. A rename or unlink is only
// durable once its folder is synced: without it a crash can bring back a
// released lease (harmless, its holder is gone) or lose a granted one,
// after which another prefix is handed the subnet of a live network.
func fsyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sync makes the changes to the store folder's entries durable.
func (s *Store) sync() error {
	do := s.syncDir
	if do == nil {
		do = fsyncDir
	}
	if err := do(s.Dir); err != nil {
		return fmt.Errorf("sync lease store %s: %w", s.Dir, err)
	}
	return nil
}

// remove deletes a lease file (a missing one is fine) and syncs the
// folder, so the release survives a crash.
func (s *Store) remove(file string) error {
	if err := os.Remove(file); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("release lease %s: %w", file, err)
	}
	return s.sync()
}

// Request asks for one subnet.
type Request struct {
	// Gateway, when valid, asks for the /24 holding it (an init file's gw:);
	// otherwise the lowest free subnet is taken.
	Gateway netip.Addr
	// Skip, when set, is asked about each subnet before it is taken so the
	// caller can avoid subnets already routed on the hypervisor host. An
	// explicit Gateway in a skipped subnet is an error.
	Skip func(subnet netip.Prefix) (reason string, skip bool)
}

// Skipped is a free subnet passed over because Request.Skip said so.
type Skipped struct {
	Subnet netip.Prefix
	Reason string
}

// Lease is one subnet held by a prefix.
type Lease struct {
	Subnet  netip.Prefix // e.g. 192.168.201.0/24
	Gateway netip.Addr   // always .1 of Subnet
	File    string       // the lease file
	Skipped []Skipped    // subnets passed over while choosing this one
}

// Entry is one lease file as found in the store.
type Entry struct {
	Subnet   netip.Prefix
	File     string
	UUIDPath string // the holder's uuid file, empty when unreadable
	UUID     string
	Live     bool  // the uuid file exists and holds UUID
	Err      error // why the lease file could not be read, if it could not
}

// Subnet returns the /24 with the given third octet.
func Subnet(octet int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(octet), 0}), 24)
}

// Gateway returns the .1 address of a leased subnet.
func Gateway(subnet netip.Prefix) netip.Addr {
	a := subnet.Masked().Addr().As4()
	a[3] = 1
	return netip.AddrFrom4(a)
}

// SubnetOf returns the leasable /24 holding addr, or an error wrapping
// ErrOutOfRange.
func SubnetOf(addr netip.Addr) (netip.Prefix, error) {
	addr = addr.Unmap()
	if !addr.Is4() {
		return netip.Prefix{}, fmt.Errorf("gateway %s: %w", addr, ErrOutOfRange)
	}
	a := addr.As4()
	if a[0] != 192 || a[1] != 168 || int(a[2]) < FirstOctet {
		return netip.Prefix{}, fmt.Errorf("gateway %s: %w", addr, ErrOutOfRange)
	}
	return Subnet(int(a[2])), nil
}

func octetOf(subnet netip.Prefix) (int, error) {
	if subnet.Bits() != 24 {
		return 0, fmt.Errorf("subnet %s: only /24 subnets are leased", subnet)
	}
	s, err := SubnetOf(subnet.Addr())
	if err != nil {
		return 0, fmt.Errorf("subnet %s: %w", subnet, ErrOutOfRange)
	}
	return int(s.Addr().As4()[2]), nil
}

func (s *Store) file(octet int) string {
	return filepath.Join(s.Dir, strconv.Itoa(octet)+".lease")
}

// lock creates the store folder when missing and takes the store lock.
func (s *Store) lock(ctx context.Context) (*flock.Lock, error) {
	if s.Dir == "" {
		return nil, errors.New("lease store folder not set")
	}
	if err := flock.SharedDir(s.Dir); err != nil {
		return nil, fmt.Errorf("create lease store %s: %w", s.Dir, err)
	}
	timeout := s.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	// 0664: every user of the store, in its group or not, may open the
	// lock (flock works on a read-only descriptor); only the folder's
	// mode decides who may change leases.
	l, err := flock.Acquire(ctx, filepath.Join(s.Dir, LockName), LockMode, timeout)
	if err != nil {
		return nil, fmt.Errorf("lease store: %w", err)
	}
	return l, nil
}

// read reads one lease file. ok is false when there is no lease file.
func (s *Store) read(octet int) (e Entry, ok bool, err error) {
	e = Entry{Subnet: Subnet(octet), File: s.file(octet)}
	data, err := os.ReadFile(e.File)
	if errors.Is(err, fs.ErrNotExist) {
		return e, false, nil
	}
	if err != nil {
		return e, true, fmt.Errorf("read lease %s: %w", e.File, err)
	}
	var pair []string
	if err := json.Unmarshal(data, &pair); err != nil || len(pair) != 2 {
		// Writers hold the store lock, so a file that does not parse is
		// what a writer killed mid-write left: nobody holds it.
		e.Err = fmt.Errorf("lease %s is not a [uuid path, uuid] JSON array", e.File)
		return e, true, nil
	}
	e.UUIDPath, e.UUID = pair[0], pair[1]
	e.Live, err = live(e.UUIDPath, e.UUID)
	if err != nil {
		return e, true, fmt.Errorf("lease %s: %w", e.File, err)
	}
	return e, true, nil
}

// live tells whether the uuid file at path still holds uuid. A missing file
// means the prefix is gone; an unreadable one is an error rather than a guess,
// because taking over a live prefix's subnet breaks its network.
func live(path, uuid string) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check holder %s: %w", path, err)
	}
	return strings.TrimSpace(string(data)) == strings.TrimSpace(uuid), nil
}

// write replaces a lease file atomically: a reader never sees half of it,
// and a crash after write returns never loses it (the file's data and the
// folder entry of the rename are both synced).
func (s *Store) write(octet int, uuidPath, uuid string) error {
	p, _ := json.Marshal(uuidPath)
	u, _ := json.Marshal(uuid)
	// The original writes Python's json.dump output: `["path", "uuid"]`.
	data := bytes.Join([][]byte{[]byte("["), p, []byte(", "), u, []byte("]")}, nil)
	f, err := os.CreateTemp(s.Dir, "."+strconv.Itoa(octet)+".lease.tmp*")
	if err != nil {
		return fmt.Errorf("write lease in %s: %w", s.Dir, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(FileMode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.file(octet))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write lease %s: %w", s.file(octet), err)
	}
	if err := s.sync(); err != nil {
		// Not known to be durable: the caller must not count on it.
		os.Remove(s.file(octet))
		return err
	}
	return nil
}

func normPath(uuidPath string) (string, error) {
	if uuidPath == "" {
		return "", errors.New("lease holder: empty uuid path")
	}
	p, err := filepath.Abs(uuidPath)
	if err != nil {
		return "", fmt.Errorf("lease holder %s: %w", uuidPath, err)
	}
	return p, nil
}

// Acquire leases one subnet for the prefix whose uuid file is uuidPath and
// whose uuid is uuid. See AcquireN.
func (s *Store) Acquire(ctx context.Context, uuidPath, uuid string, req Request) (Lease, error) {
	ls, err := s.AcquireN(ctx, uuidPath, uuid, []Request{req})
	if err != nil {
		return Lease{}, err
	}
	return ls[0], nil
}

// AcquireN leases one subnet per request under a single hold of the store
// lock, all or nothing: on error no new lease is left behind. Requests with a
// Gateway are served first so that automatic picks never take them; the
// automatic ones then take the lowest free octets in order. A subnet the same
// prefix (same uuid path and uuid) already holds is granted again, which
// makes a retried init idempotent. The result is in request order.
func (s *Store) AcquireN(ctx context.Context, uuidPath, uuid string, reqs []Request) ([]Lease, error) {
	holder, err := normPath(uuidPath)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(uuid) == "" {
		return nil, fmt.Errorf("lease for %s: empty uuid", holder)
	}
	// A lease whose holder file is missing is stale the moment it is
	// written, and anyone may take it over: refuse rather than hand out a
	// subnet that is not really held.
	if ok, err := live(holder, uuid); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s does not exist or does not hold uuid %s", holder, uuid)
		}
		return nil, fmt.Errorf("lease holder: %w (write the prefix's uuid file before leasing)", err)
	}
	// Validate before touching the store.
	wanted := make(map[int]int) // octet -> request index
	for i, r := range reqs {
		if !r.Gateway.IsValid() {
			continue
		}
		sub, err := SubnetOf(r.Gateway)
		if err != nil {
			return nil, err
		}
		o := int(sub.Addr().As4()[2])
		if j, dup := wanted[o]; dup {
			return nil, fmt.Errorf("subnet %s requested twice (gateways %s and %s)", sub, reqs[j].Gateway, r.Gateway)
		}
		wanted[o] = i
	}

	l, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()

	out := make([]Lease, len(reqs))
	var written []int
	undo := func() {
		for _, o := range written {
			os.Remove(s.file(o))
		}
		if len(written) > 0 {
			// Best effort: the error being returned matters more, and a
			// lease that comes back after a crash is one its holder,
			// whose init failed, releases on destroy.
			_ = s.sync()
		}
	}
	ours := func(e Entry) bool {
		return e.Live && filepath.Clean(e.UUIDPath) == holder && strings.TrimSpace(e.UUID) == strings.TrimSpace(uuid)
	}
	take := func(i, o int) error {
		e, exists, err := s.read(o)
		if err != nil {
			return err
		}
		if exists && ours(e) {
			out[i] = Lease{Subnet: e.Subnet, Gateway: Gateway(e.Subnet), File: e.File}
			return nil
		}
		if err := s.write(o, holder, uuid); err != nil {
			return err
		}
		written = append(written, o)
		out[i] = Lease{Subnet: Subnet(o), Gateway: Gateway(Subnet(o)), File: s.file(o)}
		return nil
	}

	// Explicit requests.
	octets := make([]int, 0, len(wanted))
	for o := range wanted {
		octets = append(octets, o)
	}
	sort.Ints(octets)
	for _, o := range octets {
		i := wanted[o]
		if err := ctx.Err(); err != nil {
			undo()
			return nil, fmt.Errorf("lease subnets: %w", err)
		}
		e, exists, err := s.read(o)
		if err != nil {
			undo()
			return nil, err
		}
		if exists && e.Live && !ours(e) {
			undo()
			return nil, fmt.Errorf("subnet %s (gateway %s): %w by the prefix of %s (lease %s)", e.Subnet, reqs[i].Gateway, ErrTaken, e.UUIDPath, e.File)
		}
		if skip := reqs[i].Skip; skip != nil && !(exists && ours(e)) {
			if why, ok := skip(Subnet(o)); ok {
				undo()
				return nil, fmt.Errorf("subnet %s (gateway %s) is in use on the host: %s", Subnet(o), reqs[i].Gateway, why)
			}
		}
		if err := take(i, o); err != nil {
			undo()
			return nil, err
		}
	}

	// Automatic requests: lowest free octet first.
	next := FirstOctet
	held, skippedTotal := 0, 0
	for i, r := range reqs {
		if r.Gateway.IsValid() {
			continue
		}
		var skipped []Skipped
		found := false
		for ; next <= LastOctet; next++ {
			if _, reserved := wanted[next]; reserved {
				continue
			}
			if err := ctx.Err(); err != nil {
				undo()
				return nil, fmt.Errorf("lease subnets: %w", err)
			}
			e, exists, err := s.read(next)
			if err != nil || (exists && e.Live) {
				// A lease that cannot be checked counts as held: taking
				// over a live prefix's subnet would break its network.
				held++
				continue
			}
			if r.Skip != nil {
				if why, ok := r.Skip(Subnet(next)); ok {
					skipped = append(skipped, Skipped{Subnet: Subnet(next), Reason: why})
					skippedTotal++
					continue
				}
			}
			if err := take(i, next); err != nil {
				undo()
				return nil, err
			}
			out[i].Skipped = skipped
			found = true
			next++
			break
		}
		if !found {
			undo()
			return nil, fmt.Errorf("%w left in %s to %s (lease store %s): %d held by live prefixes, %d in use on the host, %d needed by this request",
				ErrFull, Subnet(FirstOctet), Subnet(LastOctet), s.Dir, held, skippedTotal, len(reqs))
		}
	}
	return out, nil
}

// Release drops the leases on the given subnets that uuidPath holds. Leases
// held by someone else, and subnets without a lease, are left alone: a
// release is safe to repeat.
func (s *Store) Release(ctx context.Context, uuidPath string, subnets ...netip.Prefix) error {
	holder, err := normPath(uuidPath)
	if err != nil {
		return err
	}
	octets := make([]int, 0, len(subnets))
	for _, sub := range subnets {
		o, err := octetOf(sub)
		if err != nil {
			return err
		}
		octets = append(octets, o)
	}
	l, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	for _, o := range octets {
		if err := s.releaseIfHeld(o, holder); err != nil {
			return err
		}
	}
	return nil
}

// ReleaseAll drops every lease held by uuidPath (whatever uuid it recorded)
// and returns the released subnets. destroy and a failed init call it, so a
// prefix never leaks leases.
func (s *Store) ReleaseAll(ctx context.Context, uuidPath string) ([]netip.Prefix, error) {
	holder, err := normPath(uuidPath)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(s.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	l, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	var released []netip.Prefix
	for o := FirstOctet; o <= LastOctet; o++ {
		e, exists, _ := s.read(o)
		if !exists || e.UUIDPath == "" || filepath.Clean(e.UUIDPath) != holder {
			continue
		}
		if err := s.remove(e.File); err != nil {
			return released, err
		}
		released = append(released, e.Subnet)
	}
	return released, nil
}

func (s *Store) releaseIfHeld(o int, holder string) error {
	e, exists, _ := s.read(o)
	if !exists || e.UUIDPath == "" || filepath.Clean(e.UUIDPath) != holder {
		return nil
	}
	return s.remove(e.File)
}

// List returns every lease file in the store, by subnet, with whether its
// holder is still live. A missing store folder is an empty store.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	if _, err := os.Stat(s.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	l, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	var out []Entry
	for o := FirstOctet; o <= LastOctet; o++ {
		e, exists, err := s.read(o)
		if !exists {
			continue
		}
		if err != nil && e.Err == nil {
			e.Err = err
		}
		out = append(out, e)
	}
	return out, nil
}
