package provider

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"libvirt.org/go/libvirt"
)

// libvirtConn implements Conn over a real libvirt connection.
type libvirtConn struct {
	c *libvirt.Connect
}

// Dial opens a libvirt connection. user and password, when set, answer the
// authentication callback (SASL or ssh password prompts); otherwise libvirt's
// default authentication is used.
func Dial(uri, user, password string) (Conn, error) {
	var (
		c   *libvirt.Connect
		err error
	)
	if remoteURI(uri) {
		eventLoop()
	}
	if user == "" && password == "" {
		c, err = libvirt.NewConnectWithAuthDefault(uri, 0)
	} else {
		auth := &libvirt.ConnectAuth{
			CredType: []libvirt.ConnectCredentialType{libvirt.CRED_AUTHNAME, libvirt.CRED_PASSPHRASE},
			Callback: func(creds []*libvirt.ConnectCredential) {
				for _, cred := range creds {
					switch cred.Type {
					case libvirt.CRED_AUTHNAME:
						cred.Result = user
						cred.ResultLen = len(user)
					case libvirt.CRED_PASSPHRASE:
						cred.Result = password
						cred.ResultLen = len(password)
					}
				}
			},
		}
		c, err = libvirt.NewConnectWithAuth(uri, auth, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to libvirt at %s: %w", uri, err)
	}
	if remoteURI(uri) && eventLoop() {
		// A vanished remote host then fails calls within about 20 s
		// instead of hanging until TCP gives up.
		_ = c.SetKeepAlive(keepAliveInterval, keepAliveCount)
	}
	return &libvirtConn{c: c}, nil
}

// Keepalive of remote connections: a probe every 5 s, dead after 3 missed.
const (
	keepAliveInterval = 5
	keepAliveCount    = 3
)

var (
	eventLoopOnce sync.Once
	eventLoopOK   bool
)

// eventLoop starts libvirt's default event loop once per process; libvirt
// needs it to send keepalive probes. It must run before the connection
// that uses it is opened, which Dial guarantees by calling it first.
func eventLoop() bool {
	eventLoopOnce.Do(func() {
		if err := libvirt.EventRegisterDefaultImpl(); err != nil {
			return
		}
		eventLoopOK = true
		go func() {
			for {
				if err := libvirt.EventRunDefaultImpl(); err != nil {
					time.Sleep(time.Second)
				}
			}
		}()
	})
	return eventLoopOK
}

func remoteURI(uri string) bool {
	u, err := url.Parse(uri)
	return err == nil && u.Host != ""
}

// mapErr turns libvirt's "no such object" errors into ErrNotFound.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var lerr libvirt.Error
	if errors.As(err, &lerr) {
		switch lerr.Code {
		case libvirt.ERR_NO_DOMAIN, libvirt.ERR_NO_NETWORK, libvirt.ERR_NO_STORAGE_POOL,
			libvirt.ERR_NO_STORAGE_VOL, libvirt.ERR_NO_DOMAIN_SNAPSHOT:
			return fmt.Errorf("%w: %s", ErrNotFound, lerr.Message)
		}
		return errors.New(lerr.Message)
	}
	return err
}

func (l *libvirtConn) Close() error {
	_, err := l.c.Close()
	return err
}

func (l *libvirtConn) Capabilities() (string, error) {
	s, err := l.c.GetCapabilities()
	return s, mapErr(err)
}

func (l *libvirtConn) withDomain(name string, f func(d *libvirt.Domain) error) error {
	d, err := l.c.LookupDomainByName(name)
	if err != nil {
		return mapErr(err)
	}
	defer d.Free()
	return mapErr(f(d))
}

func (l *libvirtConn) DefineDomain(xml string) error {
	d, err := l.c.DomainDefineXML(xml)
	if err != nil {
		return mapErr(err)
	}
	return d.Free()
}

func (l *libvirtConn) DomainXML(name string) (string, error) {
	var s string
	err := l.withDomain(name, func(d *libvirt.Domain) (err error) {
		s, err = d.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
		return err
	})
	return s, err
}

func mapState(s libvirt.DomainState) DomainState {
	switch s {
	case libvirt.DOMAIN_RUNNING:
		return DomainRunning
	case libvirt.DOMAIN_BLOCKED:
		return DomainBlocked
	case libvirt.DOMAIN_PAUSED:
		return DomainPaused
	case libvirt.DOMAIN_SHUTDOWN:
		return DomainShutdown
	case libvirt.DOMAIN_SHUTOFF:
		return DomainShutoff
	case libvirt.DOMAIN_CRASHED:
		return DomainCrashed
	case libvirt.DOMAIN_PMSUSPENDED:
		return DomainPMSuspended
	}
	return DomainNoState
}

func (l *libvirtConn) DomainState(name string) (DomainState, error) {
	var st DomainState
	err := l.withDomain(name, func(d *libvirt.Domain) error {
		s, _, err := d.GetState()
		st = mapState(s)
		return err
	})
	return st, err
}

func (l *libvirtConn) StartDomain(name string) error {
	return l.withDomain(name, func(d *libvirt.Domain) error { return d.Create() })
}

func (l *libvirtConn) DestroyDomain(name string) error {
	return l.withDomain(name, func(d *libvirt.Domain) error { return d.Destroy() })
}

func (l *libvirtConn) ShutdownDomain(name string) error {
	return l.withDomain(name, func(d *libvirt.Domain) error { return d.ShutdownFlags(libvirt.DOMAIN_SHUTDOWN_ACPI_POWER_BTN) })
}

func (l *libvirtConn) RebootDomain(name string) error {
	return l.withDomain(name, func(d *libvirt.Domain) error { return d.Reboot(libvirt.DOMAIN_REBOOT_GUEST_AGENT) })
}

func (l *libvirtConn) UndefineDomain(name string) error {
	return l.withDomain(name, func(d *libvirt.Domain) error {
		return d.UndefineFlags(libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
			libvirt.DOMAIN_UNDEFINE_NVRAM | libvirt.DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
	})
}

func (l *libvirtConn) ListDomains() ([]DomainInfo, error) {
	doms, err := l.c.ListAllDomains(0)
	if err != nil {
		return nil, mapErr(err)
	}
	var out []DomainInfo
	for i := range doms {
		d := &doms[i]
		name, err1 := d.GetName()
		xml, err2 := d.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
		st, _, err3 := d.GetState()
		d.Free()
		if err := errors.Join(err1, err2, err3); err != nil {
			// The domain vanished while listing: skip it.
			if errors.Is(mapErr(err), ErrNotFound) {
				continue
			}
			return nil, mapErr(err)
		}
		out = append(out, DomainInfo{Name: name, XML: xml, State: mapState(st)})
	}
	return out, nil
}

func (l *libvirtConn) FSThaw(name string) error {
	return l.withDomain(name, func(d *libvirt.Domain) error { return d.FSThaw(nil, 0) })
}

func (l *libvirtConn) CreateSnapshot(domain, xml string) error {
	return l.withDomain(domain, func(d *libvirt.Domain) error {
		s, err := d.CreateSnapshotXML(xml, 0)
		if err != nil {
			return err
		}
		return s.Free()
	})
}

func (l *libvirtConn) RevertSnapshot(domain, snapshot string) error {
	return l.withDomain(domain, func(d *libvirt.Domain) error {
		s, err := d.SnapshotLookupByName(snapshot, 0)
		if err != nil {
			return err
		}
		defer s.Free()
		return s.RevertToSnapshot(0)
	})
}

func (l *libvirtConn) ListSnapshots(domain string) ([]string, error) {
	var out []string
	err := l.withDomain(domain, func(d *libvirt.Domain) error {
		snaps, err := d.ListAllSnapshots(0)
		if err != nil {
			return err
		}
		for i := range snaps {
			x, err := snaps[i].GetXMLDesc(0)
			snaps[i].Free()
			if err != nil {
				return err
			}
			out = append(out, x)
		}
		return nil
	})
	return out, err
}

// streamRW adapts a blocking libvirt stream to io.ReadWriteCloser. Close
// may run while another goroutine is blocked in Read: it aborts the stream
// (which wakes the reader) and frees it only once no Recv or Send is in
// flight, so the stream is never used after it is freed.
type streamRW struct {
	s       *libvirt.Stream
	recvMu  sync.Mutex
	sendMu  sync.Mutex
	closeMu sync.Mutex
	closed  bool
	aborted atomic.Bool
}

func (s *streamRW) Read(p []byte) (int, error) {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	if s.aborted.Load() {
		return 0, io.EOF
	}
	n, err := s.s.Recv(p)
	if err != nil {
		if s.aborted.Load() {
			return 0, io.EOF
		}
		return 0, mapErr(err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (s *streamRW) Write(p []byte) (int, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.aborted.Load() {
		return 0, io.ErrClosedPipe
	}
	total := 0
	for total < len(p) {
		n, err := s.s.Send(p[total:])
		if err != nil {
			return total, mapErr(err)
		}
		total += n
	}
	return total, nil
}

func (s *streamRW) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.aborted.Store(true)
	_ = s.s.Abort()
	s.recvMu.Lock()
	s.sendMu.Lock()
	defer s.recvMu.Unlock()
	defer s.sendMu.Unlock()
	return s.s.Free()
}

func (l *libvirtConn) OpenConsole(domain string) (io.ReadWriteCloser, error) {
	st, err := l.c.NewStream(0)
	if err != nil {
		return nil, mapErr(err)
	}
	err = l.withDomain(domain, func(d *libvirt.Domain) error {
		return d.OpenConsole("", st, libvirt.DOMAIN_CONSOLE_FORCE)
	})
	if err != nil {
		st.Free()
		return nil, err
	}
	return &streamRW{s: st}, nil
}

func (l *libvirtConn) withNetwork(name string, f func(n *libvirt.Network) error) error {
	n, err := l.c.LookupNetworkByName(name)
	if err != nil {
		return mapErr(err)
	}
	defer n.Free()
	return mapErr(f(n))
}

func (l *libvirtConn) DefineNetwork(xml string) error {
	n, err := l.c.NetworkDefineXML(xml)
	if err != nil {
		return mapErr(err)
	}
	return n.Free()
}

func (l *libvirtConn) StartNetwork(name string) error {
	return l.withNetwork(name, func(n *libvirt.Network) error { return n.Create() })
}

func (l *libvirtConn) DestroyNetwork(name string) error {
	return l.withNetwork(name, func(n *libvirt.Network) error { return n.Destroy() })
}

func (l *libvirtConn) UndefineNetwork(name string) error {
	return l.withNetwork(name, func(n *libvirt.Network) error { return n.Undefine() })
}

func (l *libvirtConn) NetworkActive(name string) (bool, error) {
	var active bool
	err := l.withNetwork(name, func(n *libvirt.Network) error {
		var err error
		active, err = n.IsActive()
		return err
	})
	return active, err
}

func (l *libvirtConn) ListNetworks() ([]NetworkInfo, error) {
	nets, err := l.c.ListAllNetworks(0)
	if err != nil {
		return nil, mapErr(err)
	}
	var out []NetworkInfo
	for i := range nets {
		n := &nets[i]
		name, err1 := n.GetName()
		xml, err2 := n.GetXMLDesc(0)
		active, err3 := n.IsActive()
		n.Free()
		if err := errors.Join(err1, err2, err3); err != nil {
			if errors.Is(mapErr(err), ErrNotFound) {
				continue
			}
			return nil, mapErr(err)
		}
		out = append(out, NetworkInfo{Name: name, XML: xml, Active: active})
	}
	return out, nil
}

func (l *libvirtConn) ListInterfaceXML() ([]string, error) {
	ifs, err := l.c.ListAllInterfaces(libvirt.CONNECT_LIST_INTERFACES_ACTIVE)
	if err != nil {
		return nil, mapErr(err)
	}
	var out []string
	for i := range ifs {
		x, err := ifs[i].GetXMLDesc(0)
		ifs[i].Free()
		if err == nil {
			out = append(out, x)
		}
	}
	return out, nil
}

func (l *libvirtConn) withPool(name string, f func(p *libvirt.StoragePool) error) error {
	p, err := l.c.LookupStoragePoolByName(name)
	if err != nil {
		return mapErr(err)
	}
	defer p.Free()
	return mapErr(f(p))
}

func (l *libvirtConn) PoolXML(name string) (string, error) {
	var s string
	err := l.withPool(name, func(p *libvirt.StoragePool) (err error) {
		s, err = p.GetXMLDesc(0)
		return err
	})
	return s, err
}

func (l *libvirtConn) DefinePool(xml string) error {
	p, err := l.c.StoragePoolDefineXML(xml, 0)
	if err != nil {
		return mapErr(err)
	}
	defer p.Free()
	if err := p.Build(libvirt.STORAGE_POOL_BUILD_NEW); err != nil {
		return mapErr(err)
	}
	if err := p.Create(0); err != nil {
		return mapErr(err)
	}
	return mapErr(p.SetAutostart(true))
}

func (l *libvirtConn) StartPool(name string) error {
	return l.withPool(name, func(p *libvirt.StoragePool) error {
		active, err := p.IsActive()
		if err != nil || active {
			return err
		}
		return p.Create(0)
	})
}

func (l *libvirtConn) withVolume(pool, name string, f func(v *libvirt.StorageVol) error) error {
	return l.withPool(pool, func(p *libvirt.StoragePool) error {
		v, err := p.LookupStorageVolByName(name)
		if err != nil {
			return err
		}
		defer v.Free()
		return f(v)
	})
}

func (l *libvirtConn) VolumeXML(pool, name string) (string, error) {
	var s string
	err := l.withVolume(pool, name, func(v *libvirt.StorageVol) (err error) {
		s, err = v.GetXMLDesc(0)
		return err
	})
	return s, err
}

func (l *libvirtConn) CreateVolume(pool, xml string) error {
	return l.withPool(pool, func(p *libvirt.StoragePool) error {
		v, err := p.StorageVolCreateXML(xml, 0)
		if err != nil {
			return err
		}
		return v.Free()
	})
}

func (l *libvirtConn) DeleteVolume(pool, name string) error {
	return l.withVolume(pool, name, func(v *libvirt.StorageVol) error { return v.Delete(0) })
}

func (l *libvirtConn) ListVolumes(pool string) ([]string, error) {
	var out []string
	err := l.withPool(pool, func(p *libvirt.StoragePool) error {
		_ = p.Refresh(0)
		vols, err := p.ListAllStorageVolumes(0)
		if err != nil {
			return err
		}
		for i := range vols {
			n, err := vols[i].GetName()
			vols[i].Free()
			if err == nil {
				out = append(out, n)
			}
		}
		return nil
	})
	return out, err
}

func (l *libvirtConn) UploadVolume(pool, name string, r io.Reader, size int64) error {
	st, err := l.c.NewStream(0)
	if err != nil {
		return mapErr(err)
	}
	defer st.Free()
	err = l.withVolume(pool, name, func(v *libvirt.StorageVol) error {
		return v.Upload(st, 0, uint64(size), 0)
	})
	if err != nil {
		return err
	}
	if _, err := io.Copy(sendOnly{st}, io.LimitReader(r, size)); err != nil {
		_ = st.Abort()
		return fmt.Errorf("upload to volume %s/%s: %w", pool, name, err)
	}
	return mapErr(st.Finish())
}

// sendOnly writes to a stream owned (and freed) by the caller.
type sendOnly struct{ s *libvirt.Stream }

func (w sendOnly) Write(p []byte) (int, error) {
	total := 0
	for total < len(p) {
		n, err := w.s.Send(p[total:])
		if err != nil {
			return total, mapErr(err)
		}
		total += n
	}
	return total, nil
}

func (l *libvirtConn) VolumeTail(pool, name string, max int64) ([]byte, error) {
	if err := l.withPool(pool, func(p *libvirt.StoragePool) error { return p.Refresh(0) }); err != nil {
		return nil, err
	}
	st, err := l.c.NewStream(0)
	if err != nil {
		return nil, mapErr(err)
	}
	defer st.Free()
	err = l.withVolume(pool, name, func(v *libvirt.StorageVol) error {
		info, err := v.GetInfo()
		if err != nil {
			return err
		}
		off := uint64(0)
		if info.Capacity > uint64(max) {
			off = info.Capacity - uint64(max)
		}
		return v.Download(st, off, info.Capacity-off, 0)
	})
	if err != nil {
		return nil, err
	}
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := st.Recv(buf)
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			break
		}
		if err != nil {
			_ = st.Abort()
			return nil, fmt.Errorf("download volume %s/%s: %w", pool, name, mapErr(err))
		}
		out = append(out, buf[:n]...)
	}
	if len(out) > int(max) {
		out = out[len(out)-int(max):]
	}
	return out, mapErr(st.Finish())
}

func (l *libvirtConn) DownloadVolume(pool, name string, w io.Writer) error {
	st, err := l.c.NewStream(0)
	if err != nil {
		return mapErr(err)
	}
	defer st.Free()
	err = l.withVolume(pool, name, func(v *libvirt.StorageVol) error {
		return v.Download(st, 0, 0, 0)
	})
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := st.Recv(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = st.Abort()
			return fmt.Errorf("download volume %s/%s: %w", pool, name, mapErr(err))
		}
		if n == 0 {
			break
		}
		if _, err := w.Write(buf[:n]); err != nil {
			_ = st.Abort()
			return fmt.Errorf("download volume %s/%s: %w", pool, name, err)
		}
	}
	return mapErr(st.Finish())
}
