package provider

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// OwnerNamespace is the XML namespace of the owner tag lago puts in the
// <metadata> of every domain and network it creates. It lets ListOwned and
// RemoveOwned find an environment's objects without any local state.
const OwnerNamespace = "https://lago-go.dev/xmlns/owner/1"

// ownerTag is <owner xmlns=OwnerNamespace prefix=... uuid=... name=.../>.
type ownerTag struct {
	XMLName xml.Name `xml:"https://lago-go.dev/xmlns/owner/1 owner"`
	Prefix  string   `xml:"prefix,attr"`
	UUID    string   `xml:"uuid,attr"`
	// Name is the object's lago name (VM or network name in the init file).
	Name string `xml:"name,attr,omitempty"`
}

func (o ownerTag) marshal() (string, error) {
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
