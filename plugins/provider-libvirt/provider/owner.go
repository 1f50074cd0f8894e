package provider

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// OwnerNamespace is the XML namespace of the owner tag lago puts in the
// <metadata> of every domain and network it creates. It lets ListOwned and
// RemoveOwned find an environment's objects without any local state.
const OwnerNamespace = "https://lago-go.dev/xmlns/owner/1"

// ownerTag is <owner xmlns=OwnerNamespace prefix=... uuid=... name=...
// host=... uid=.../>.
type ownerTag struct {
	XMLName xml.Name `xml:"https://lago-go.dev/xmlns/owner/1 owner"`
	Prefix  string   `xml:"prefix,attr"`
	UUID    string   `xml:"uuid,attr"`
	// Name is the object's lago name (VM or network name in the init file).
	Name string `xml:"name,attr,omitempty"`
	// Host and UID are the host name and uid of the process that created
	// the object (this plugin runs on the core's host as the core's user).
	// Prefix names a folder of that host, readable maybe only by that
	// user: orphan cleanup elsewhere or as another user cannot check it
	// and must keep the object. Empty in tags of older versions.
	Host string `xml:"host,attr,omitempty"`
	UID  string `xml:"uid,attr,omitempty"`
}

// localHost and localUID are what marshal stamps into new tags; variables
// so tests can pretend to be another host or user.
var (
	localHost = func() string { h, _ := os.Hostname(); return h }
	localUID  = os.Getuid
)

// marshal encodes the tag, stamped with this host and uid when it names
// none: a tag is marshalled only to create or redefine an object, which
// then belongs to whoever did that.
func (o ownerTag) marshal() (string, error) {
	if o.Host == "" && o.UID == "" {
		o.Host, o.UID = localHost(), strconv.Itoa(localUID())
	}
	b, err := xml.Marshal(o)
	if err != nil {
		return "", fmt.Errorf("marshal owner tag: %w", err)
	}
	return string(b), nil
}

// parseOwner finds our owner tag in the inner XML of a <metadata> element,
// which may hold other applications' elements too. ok is false when there
// is no tag of ours.
func parseOwner(metadataInner string) (o ownerTag, ok bool, err error) {
	if metadataInner == "" {
		return o, false, nil
	}
	dec := xml.NewDecoder(bytes.NewReader([]byte(metadataInner)))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return o, false, nil
		}
		if err != nil {
			return o, false, fmt.Errorf("parse metadata: %w", err)
		}
		se, isStart := tok.(xml.StartElement)
		if !isStart {
			continue
		}
		if se.Name.Space == OwnerNamespace && se.Name.Local == "owner" {
			if err := dec.DecodeElement(&o, &se); err != nil {
				return o, false, fmt.Errorf("parse owner tag: %w", err)
			}
			return o, true, nil
		}
		if err := dec.Skip(); err != nil {
			return o, false, fmt.Errorf("parse metadata: %w", err)
		}
	}
}

// uid returns the tag's uid, or nil when it records none (an older tag)
// or one that is not a number.
func (o ownerTag) uid() *uint32 {
	if o.UID == "" {
		return nil
	}
	n, err := strconv.ParseUint(o.UID, 10, 32)
	if err != nil {
		return nil
	}
	u := uint32(n)
	return &u
}
