package hostcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The few pieces of libvirt's RPC protocol (src/rpc/virnetprotocol.x,
// src/remote/remote_protocol.x) that authenticate a connection: a client
// asks AUTH_LIST for the daemon's methods before it opens anything, and
// proves itself with AUTH_POLKIT when the daemon asks polkit. Whether the
// socket lets a user in is only half the answer: a daemon whose socket is
// 0777 but whose auth_unix_rw is "polkit" refuses every non-root client on
// a host without polkit, in its protocol, after connect(2) succeeded.
const (
	rpcProgram     = 0x20008086
	rpcVersion     = 1
	procAuthList   = 66
	procAuthPolkit = 67
	rpcCall        = 0
	rpcStatusOK    = 0

	authNone   = 0
	authSASL   = 1
	authPolkit = 2
)

// errAuthRefused is wrapped when the daemon answered a call with an error.
var errAuthRefused = errors.New("the daemon refused")

// call sends one call without arguments and returns the reply's payload.
func call(c net.Conn, proc, serial uint32) ([]byte, error) {
	hdr := make([]byte, 28)
	binary.BigEndian.PutUint32(hdr[0:], 28)
	binary.BigEndian.PutUint32(hdr[4:], rpcProgram)
	binary.BigEndian.PutUint32(hdr[8:], rpcVersion)
	binary.BigEndian.PutUint32(hdr[12:], proc)
	binary.BigEndian.PutUint32(hdr[16:], rpcCall)
	binary.BigEndian.PutUint32(hdr[20:], serial)
	binary.BigEndian.PutUint32(hdr[24:], rpcStatusOK)
	if _, err := c.Write(hdr); err != nil {
		return nil, err
	}
	var lenb [4]byte
	if _, err := io.ReadFull(c, lenb[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lenb[:])
	if n < 28 || n > 1<<20 {
		return nil, fmt.Errorf("bad reply length %d", n)
	}
	msg := make([]byte, n-4)
	if _, err := io.ReadFull(c, msg); err != nil {
		return nil, err
	}
	if binary.BigEndian.Uint32(msg[0:]) != rpcProgram || binary.BigEndian.Uint32(msg[8:]) != proc {
		return nil, errors.New("not a reply of libvirt's remote program")
	}
	body := msg[24:]
	if binary.BigEndian.Uint32(msg[20:]) != rpcStatusOK {
		return nil, fmt.Errorf("%w: %s", errAuthRefused, errorMessage(body))
	}
	return body, nil
}

// errorMessage decodes the message of a remote_error: code, domain, then
// an optional string.
func errorMessage(b []byte) string {
	if len(b) < 16 || binary.BigEndian.Uint32(b[8:]) == 0 {
		return "no message"
	}
	n := binary.BigEndian.Uint32(b[12:])
	if uint64(len(b)) < 16+uint64(n) {
		return "no message"
	}
	return string(b[16 : 16+n])
}

// probeAuth asks the daemon on c how it authenticates and, when it asks
// polkit, whether polkit lets this process in. It returns the method and
// the daemon's refusal, if any.
func probeAuth(c net.Conn) (method string, err error) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	body, err := call(c, procAuthList, 1)
	if err != nil {
		return "", fmt.Errorf("list auth methods: %w", err)
	}
	if len(body) < 4 {
		return "", errors.New("short auth list reply")
	}
	n := binary.BigEndian.Uint32(body)
	if n == 0 || uint64(len(body)) < 4+4*uint64(n) {
		return "none", nil
	}
	switch binary.BigEndian.Uint32(body[4:]) {
	case authNone:
		return "none", nil
	case authSASL:
		return "sasl", nil
	case authPolkit:
		if _, err := call(c, procAuthPolkit, 2); err != nil {
			return "polkit", err
		}
		return "polkit", nil
	}
	return "unknown", nil
}
