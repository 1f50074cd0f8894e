package hostcheck

import (
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDaemon answers libvirt's AUTH_LIST with methods and AUTH_POLKIT
// with polkitErr (none: success), as a libvirtd would.
func fakeDaemon(t *testing.T, methods []uint32, polkitErr string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					hdr := make([]byte, 28)
					if _, err := io.ReadFull(c, hdr); err != nil {
						return
					}
					proc := binary.BigEndian.Uint32(hdr[12:])
					var body []byte
					status := uint32(0)
					switch proc {
					case procAuthList:
						body = binary.BigEndian.AppendUint32(body, uint32(len(methods)))
						for _, m := range methods {
							body = binary.BigEndian.AppendUint32(body, m)
						}
					case procAuthPolkit:
						if polkitErr != "" {
							status = 1
							body = binary.BigEndian.AppendUint32(body, 1) // code
							body = binary.BigEndian.AppendUint32(body, 7) // domain
							body = binary.BigEndian.AppendUint32(body, 1) // message present
							body = binary.BigEndian.AppendUint32(body, uint32(len(polkitErr)))
							body = append(body, polkitErr...)
							for len(body)%4 != 0 {
								body = append(body, 0)
							}
						} else {
							body = binary.BigEndian.AppendUint32(body, 1)
						}
					}
					reply := binary.BigEndian.AppendUint32(nil, uint32(28+len(body)))
					reply = append(reply, hdr[4:20]...)
					binary.BigEndian.PutUint32(reply[16:], 1) // REPLY
					reply = binary.BigEndian.AppendUint32(reply, binary.BigEndian.Uint32(hdr[20:]))
					reply = binary.BigEndian.AppendUint32(reply, status)
					reply = append(reply, body...)
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return sock
}

func TestLibvirtSocketAuth(t *testing.T) {
	const noAgent = "authentication unavailable: no polkit agent available to authenticate action 'org.libvirt.unix.manage'"
	tests := []struct {
		name      string
		methods   []uint32
		polkitErr string
		ok        bool
		want      string
	}{
		{"auth none", []uint32{authNone}, "", true, "auth none"},
		{"polkit grants", []uint32{authPolkit}, "", true, "auth polkit"},
		{"polkit refuses", []uint32{authPolkit}, noAgent, false, noAgent},
		{"sasl", []uint32{authSASL}, "", true, "SASL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := LibvirtSocket("qemu+unix:///system?socket=" + fakeDaemon(t, tt.methods, tt.polkitErr))
			if r.OK != tt.ok || !strings.Contains(r.Detail, tt.want) {
				t.Fatalf("%+v", r)
			}
			if !tt.ok && !strings.Contains(r.Fix, `auth_unix_rw = "none"`) {
				t.Fatalf("fix: %s", r.Fix)
			}
		})
	}
}
