package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"libvirt.org/go/libvirtxml"
)

// fakeConn is an in-memory Conn: it keeps the XML it is given and tracks
// states the way libvirt does for the calls the provider makes.
type fakeConn struct {
	mu      sync.Mutex
	caps    string
	doms    map[string]*fakeDom
	nets    map[string]*fakeNet
	pools   map[string]*fakePool
	ifaces  []string
	clock   int64
	uuids   int
	calls   []string
	failNet map[string]error // StartNetwork errors by name
	// shutdownTurnsOff makes ShutdownDomain power the domain off, like a
	// guest that handles ACPI.
	shutdownTurnsOff bool
	console          *fakeConsole
}

type fakeDom struct {
	xml    string
	state  DomainState
	snaps  []string
	agent  bool
	frozen bool
	// thawFailures is how many FSThaw calls fail first, as while libvirt
	// reconnects to the agent of a just reverted guest.
	thawFailures int
}

type fakeNet struct {
	xml    string
	active bool
}

type fakePool struct {
	xml  string
	vols map[string]*fakeVol
}

type fakeVol struct {
	xml  string
	data []byte
}

func newFakeConn() *fakeConn {
	return &fakeConn{
		caps:  capsXML(true, true),
		doms:  map[string]*fakeDom{},
		nets:  map[string]*fakeNet{},
		pools: map[string]*fakePool{},
	}
}

func capsXML(kvm, qemu bool) string {
	arch := libvirtxml.CapsGuestArch{Name: "x86_64", Emulator: "/usr/bin/qemu-system-x86_64"}
	if qemu {
		arch.Domains = append(arch.Domains, libvirtxml.CapsGuestDomain{Type: "qemu"})
	}
	if kvm {
		arch.Domains = append(arch.Domains, libvirtxml.CapsGuestDomain{Type: "kvm"})
	}
	c := libvirtxml.Caps{Guests: []libvirtxml.CapsGuest{{OSType: "hvm", Arch: arch}}}
	s, err := c.Marshal()
	if err != nil {
		panic(err)
	}
	return s
}

func (f *fakeConn) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeConn) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func notFound(what string) error { return fmt.Errorf("%w: %s", ErrNotFound, what) }

func (f *fakeConn) Capabilities() (string, error) { return f.caps, nil }
func (f *fakeConn) Close() error                  { return nil }

func (f *fakeConn) DefineDomain(x string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		return err
	}
	f.call("DefineDomain %s", d.Name)
	if old, ok := f.doms[d.Name]; ok {
		// Like libvirt: a redefinition must keep the domain's uuid.
		var o libvirtxml.Domain
		_ = o.Unmarshal(old.xml)
		if d.UUID != o.UUID {
			return fmt.Errorf("operation failed: domain '%s' already exists with uuid %s", d.Name, o.UUID)
		}
		old.xml = x
		return nil
	}
	f.uuids++
	d.UUID = fmt.Sprintf("00000000-0000-0000-0000-%012d", f.uuids)
	x, err := d.Marshal()
	if err != nil {
		return err
	}
	f.doms[d.Name] = &fakeDom{xml: x, state: DomainShutoff}
	return nil
}

func (f *fakeConn) dom(name string) (*fakeDom, error) {
	d, ok := f.doms[name]
	if !ok {
		return nil, notFound("domain " + name)
	}
	return d, nil
}

func (f *fakeConn) DomainXML(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.dom(name)
	if err != nil {
		return "", err
	}
	return d.xml, nil
}

func (f *fakeConn) DomainState(name string) (DomainState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.dom(name)
	if err != nil {
		return DomainNoState, err
	}
	return d.state, nil
}

func (f *fakeConn) StartDomain(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("StartDomain %s", name)
	d, err := f.dom(name)
	if err != nil {
		return err
	}
	if isActive(d.state) {
		return errors.New("domain is already running")
	}
	d.state = DomainRunning
	return nil
}

func (f *fakeConn) DestroyDomain(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("DestroyDomain %s", name)
	d, err := f.dom(name)
	if err != nil {
		return err
	}
	if !isActive(d.state) {
		return errors.New("domain is not running")
	}
	d.state = DomainShutoff
	return nil
}

func (f *fakeConn) ShutdownDomain(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("ShutdownDomain %s", name)
	d, err := f.dom(name)
	if err != nil {
		return err
	}
	if f.shutdownTurnsOff {
		d.state = DomainShutoff
	}
	return nil
}

func (f *fakeConn) RebootDomain(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("RebootDomain %s", name)
	d, err := f.dom(name)
	if err != nil {
		return err
	}
	if !d.agent {
		return errors.New("QEMU guest agent is not connected")
	}
	return nil
}

func (f *fakeConn) UndefineDomain(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("UndefineDomain %s", name)
	if _, err := f.dom(name); err != nil {
		return err
	}
	delete(f.doms, name)
	return nil
}

func (f *fakeConn) ListDomains() ([]DomainInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []DomainInfo
	for n, d := range f.doms {
		out = append(out, DomainInfo{Name: n, XML: d.xml, State: d.state})
	}
	return out, nil
}

func (f *fakeConn) FSThaw(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("FSThaw %s", name)
	d, err := f.dom(name)
	if err != nil {
		return err
	}
	if d.thawFailures > 0 {
		d.thawFailures--
		return errors.New("Guest agent is not responding: QEMU guest agent is not connected")
	}
	if !d.agent {
		return errors.New("QEMU guest agent is not connected")
	}
	d.frozen = false
	return nil
}

func stateName(s DomainState) string {
	switch s {
	case DomainRunning:
		return "running"
	case DomainPaused:
		return "paused"
	}
	return "shutoff"
}

func (f *fakeConn) CreateSnapshot(domain, x string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.dom(domain)
	if err != nil {
		return err
	}
	var s libvirtxml.DomainSnapshot
	if err := s.Unmarshal(x); err != nil {
		return err
	}
	f.call("CreateSnapshot %s %s frozen=%v", domain, s.Name, d.frozen)
	f.clock++
	s.State = stateName(d.state)
	s.CreationTime = strconv.FormatInt(1000+f.clock, 10)
	out, err := s.Marshal()
	if err != nil {
		return err
	}
	d.snaps = append(d.snaps, out)
	return nil
}

func (f *fakeConn) RevertSnapshot(domain, snapshot string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("RevertSnapshot %s %s", domain, snapshot)
	d, err := f.dom(domain)
	if err != nil {
		return err
	}
	for _, x := range d.snaps {
		var s libvirtxml.DomainSnapshot
		_ = s.Unmarshal(x)
		if s.Name == snapshot {
			if s.State == "running" {
				d.state = DomainRunning
				d.frozen = s.Description == quiescedMark
			} else {
				d.state = DomainShutoff
			}
			return nil
		}
	}
	return notFound("snapshot " + snapshot)
}

func (f *fakeConn) ListSnapshots(domain string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.dom(domain)
	if err != nil {
		return nil, err
	}
	// Newest first, to prove the provider sorts.
	var out []string
	for i := len(d.snaps) - 1; i >= 0; i-- {
		out = append(out, d.snaps[i])
	}
	return out, nil
}

// fakeConsole echoes what is written, prefixed, like a guest's shell.
type fakeConsole struct {
	mu     sync.Mutex
	pr     *io.PipeReader
	pw     *io.PipeWriter
	closed bool
}

func newFakeConsole() *fakeConsole {
	pr, pw := io.Pipe()
	return &fakeConsole{pr: pr, pw: pw}
}

func (c *fakeConsole) Read(p []byte) (int, error) { return c.pr.Read(p) }
func (c *fakeConsole) Write(p []byte) (int, error) {
	go func(b []byte) { _, _ = c.pw.Write(append([]byte("echo:"), b...)) }(append([]byte(nil), p...))
	return len(p), nil
}
func (c *fakeConsole) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.pw.Close()
}

func (f *fakeConn) OpenConsole(domain string) (io.ReadWriteCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.dom(domain); err != nil {
		return nil, err
	}
	f.console = newFakeConsole()
	return f.console, nil
}

func (f *fakeConn) DefineNetwork(x string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n libvirtxml.Network
	if err := n.Unmarshal(x); err != nil {
		return err
	}
	f.call("DefineNetwork %s", n.Name)
	if old, ok := f.nets[n.Name]; ok {
		// Like libvirt: a redefinition must keep the network's uuid.
		var o libvirtxml.Network
		_ = o.Unmarshal(old.xml)
		if n.UUID != o.UUID {
			return fmt.Errorf("operation failed: network '%s' already exists with uuid %s", n.Name, o.UUID)
		}
		old.xml = x
		return nil
	}
	f.uuids++
	n.UUID = fmt.Sprintf("00000000-0000-0000-0000-%012d", f.uuids)
	x, err := n.Marshal()
	if err != nil {
		return err
	}
	f.nets[n.Name] = &fakeNet{xml: x}
	return nil
}

func (f *fakeConn) StartNetwork(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("StartNetwork %s", name)
	n, ok := f.nets[name]
	if !ok {
		return notFound("network " + name)
	}
	if err := f.failNet[name]; err != nil {
		return err
	}
	if n.active {
		return errors.New("network is already active")
	}
	n.active = true
	return nil
}

func (f *fakeConn) DestroyNetwork(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("DestroyNetwork %s", name)
	n, ok := f.nets[name]
	if !ok {
		return notFound("network " + name)
	}
	if !n.active {
		return errors.New("network is not active")
	}
	n.active = false
	return nil
}

func (f *fakeConn) UndefineNetwork(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("UndefineNetwork %s", name)
	if _, ok := f.nets[name]; !ok {
		return notFound("network " + name)
	}
	delete(f.nets, name)
	return nil
}

func (f *fakeConn) NetworkActive(name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x, ok := f.nets[name]
	if !ok {
		return false, fmt.Errorf("%w: network %s", ErrNotFound, name)
	}
	return x.active, nil
}

func (f *fakeConn) ListNetworks() ([]NetworkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []NetworkInfo
	for n, x := range f.nets {
		out = append(out, NetworkInfo{Name: n, XML: x.xml, Active: x.active})
	}
	return out, nil
}

func (f *fakeConn) ListInterfaceXML() ([]string, error) {
	if f.ifaces == nil {
		return nil, errors.New("this function is not supported by the connection driver")
	}
	return f.ifaces, nil
}

func (f *fakeConn) PoolXML(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pools[name]
	if !ok {
		return "", notFound("pool " + name)
	}
	return p.xml, nil
}

func (f *fakeConn) DefinePool(x string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var p libvirtxml.StoragePool
	if err := p.Unmarshal(x); err != nil {
		return err
	}
	f.call("DefinePool %s %s %s", p.Name, p.Type, p.Target.Path)
	f.pools[p.Name] = &fakePool{xml: x, vols: map[string]*fakeVol{}}
	return nil
}

func (f *fakeConn) StartPool(name string) error {
	_, err := f.PoolXML(name)
	return err
}

func (f *fakeConn) pool(name string) (*fakePool, error) {
	p, ok := f.pools[name]
	if !ok {
		return nil, notFound("pool " + name)
	}
	return p, nil
}

func (f *fakeConn) VolumeXML(pool, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.pool(pool)
	if err != nil {
		return "", err
	}
	v, ok := p.vols[name]
	if !ok {
		return "", notFound("volume " + name)
	}
	return v.xml, nil
}

func (f *fakeConn) CreateVolume(pool, x string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.pool(pool)
	if err != nil {
		return err
	}
	var v libvirtxml.StorageVolume
	if err := v.Unmarshal(x); err != nil {
		return err
	}
	if _, ok := p.vols[v.Name]; ok {
		return errors.New("storage volume already exists")
	}
	f.call("CreateVolume %s/%s", pool, v.Name)
	// libvirt fills in the target path of a dir pool volume.
	v.Target.Path = "/pool/" + pool + "/" + v.Name
	out, err := v.Marshal()
	if err != nil {
		return err
	}
	p.vols[v.Name] = &fakeVol{xml: out}
	return nil
}

func (f *fakeConn) DeleteVolume(pool, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.pool(pool)
	if err != nil {
		return err
	}
	if _, ok := p.vols[name]; !ok {
		return notFound("volume " + name)
	}
	f.call("DeleteVolume %s/%s", pool, name)
	delete(p.vols, name)
	return nil
}

func (f *fakeConn) ListVolumes(pool string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.pool(pool)
	if err != nil {
		return nil, err
	}
	var out []string
	for n := range p.vols {
		out = append(out, n)
	}
	return out, nil
}

func (f *fakeConn) UploadVolume(pool, name string, r io.Reader, size int64) error {
	data, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.pool(pool)
	if err != nil {
		return err
	}
	v, ok := p.vols[name]
	if !ok {
		return notFound("volume " + name)
	}
	f.call("UploadVolume %s/%s %d", pool, name, size)
	v.data = data
	return nil
}

func (f *fakeConn) DownloadVolume(pool, name string, w io.Writer) error {
	f.mu.Lock()
	p, err := f.pool(pool)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	v, ok := p.vols[name]
	f.mu.Unlock()
	if !ok {
		return notFound("volume " + name)
	}
	_, err = io.Copy(w, bytes.NewReader(v.data))
	return err
}

// newTestProvider returns a provider over fc configured with config, with
// a KVM probe that reports probeErr.
func newTestProvider(t *testing.T, fc *fakeConn, config map[string]string, probeErr error) *Provider {
	t.Helper()
	p := New(hclog.NewNullLogger())
	p.dial = func(uri, user, password string) (Conn, error) { return fc, nil }
	p.probeKVM = func(context.Context, string) error { return probeErr }
	if err := p.Configure(context.Background(), config, nil); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return p
}

func (f *fakeConn) VolumeTail(pool, name string, max int64) ([]byte, error) {
	var b bytes.Buffer
	if err := f.DownloadVolume(pool, name, &b); err != nil {
		return nil, err
	}
	data := b.Bytes()
	if int64(len(data)) > max {
		data = data[int64(len(data))-max:]
	}
	return data, nil
}
