package lago

import (
	"context"
	"fmt"
	"os"

	"github.com/lago-go/lago/core/inventory"
)

// Inventory is an environment's ansible inventory (see AnsibleInventory);
// INI() is the original's text, Document() ansible's JSON shape.
type Inventory = inventory.Inventory

// Inventory builds the ansible inventory grouped by the key paths keys
// (default vm-type, groups, vm-provider; a path such as
// disks/0/metadata/distro goes into the VM's spec).
func (e *Env) Inventory(ctx context.Context, keys ...string) (*Inventory, error) {
	if err := e.c.check(); err != nil {
		return nil, err
	}
	return e.c.mgr.Inventory(ctx, e.path, keys)
}

// AnsibleInventory is the inventory as `lago ansible_hosts` prints it.
func (e *Env) AnsibleInventory(ctx context.Context, keys ...string) (string, error) {
	inv, err := e.Inventory(ctx, keys...)
	if err != nil {
		return "", err
	}
	return inv.INI(), nil
}

// AnsibleInventoryFile writes the inventory to a temporary file (mode
// 0600: it may hold passwords) for `ansible -i PATH`; cleanup removes it.
func (e *Env) AnsibleInventoryFile(ctx context.Context, keys ...string) (path string, cleanup func(), err error) {
	text, err := e.AnsibleInventory(ctx, keys...)
	if err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp("", "lago-inventory-*.ini")
	if err != nil {
		return "", nil, fmt.Errorf("ansible inventory file: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", nil, fmt.Errorf("ansible inventory file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", nil, fmt.Errorf("ansible inventory file: %w", err)
	}
	name := f.Name()
	return name, func() { os.Remove(name) }, nil
}
