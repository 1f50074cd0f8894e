package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/lago-go/lago/core/spec"
)

// SpecDefaults are the values the original wrote into every VM spec when
// it loaded it (its default_vm_type, default_vm_provider and ssh_user),
// so that keys such as vm-type group every VM.
type SpecDefaults struct {
	VMType, VMProvider, SSHUser string
}

// SpecMap returns vm as Host.Spec wants it: the spec's JSON (the keys of
// virt/vm-<name>) decoded into maps and lists, numbers as json.Number,
// with vm-type, vm-provider and ssh-user filled from d where the spec
// has none.
func SpecMap(vm *spec.VM, d SpecDefaults) (map[string]any, error) {
	raw, err := json.Marshal(vm)
	if err != nil {
		return nil, fmt.Errorf("encode spec of vm %s: %w", vm.Name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode spec of vm %s: %w", vm.Name, err)
	}
	for k, v := range map[string]string{"vm-type": d.VMType, "vm-provider": d.VMProvider, "ssh-user": d.SSHUser} {
		if s, _ := m[k].(string); s == "" && v != "" {
			m[k] = v
		}
	}
	return m, nil
}
