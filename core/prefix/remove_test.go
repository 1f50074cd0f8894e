package prefix

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lago-go/lago/core/spec"
)

// fullPrefix makes an initialized prefix with specs and a disk in a
// workdir.
func fullPrefix(t *testing.T, root string) *Prefix {
	t.Helper()
	w, err := CreateWorkdir(filepath.Join(root, ".lago"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.CreatePrefix(DefaultPrefixName, true, CreateOptions{KeyType: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	specs := &Specs{
		Nets: []spec.Net{{Name: "n0", Type: spec.NetNAT}},
		VMs:  []spec.VM{{Name: "vm0", SSHPassword: "s3cret", RootPassword: "r00t"}},
	}
	if err := p.Save(specs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.ImagesDir(), "vm0_root.qcow2"), []byte("disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.MarkInitialized(); err != nil {
		t.Fatal(err)
	}
	return p
}

var errKilled = errors.New("killed")

// A removal stopped at any step (a kill) leaves a folder that still looks
// like a prefix (uuid or marker, or empty), so the next destroy finishes
// it; the markers go last.
func TestRemoveIsResumableAtEveryStep(t *testing.T) {
	steps := 0
	for k := 0; ; k++ {
		p := fullPrefix(t, t.TempDir())
		calls := 0
		removeStep = func(path string) error {
			if calls == k {
				return errKilled
			}
			calls++
			return os.RemoveAll(path)
		}
		err := Remove(p)
		removeStep = os.RemoveAll
		if err == nil {
			steps = k
			break
		}
		if !errors.Is(err, errKilled) {
			t.Fatalf("step %d: %v", k, err)
		}
		if !looksLikePrefix(p.Path) {
			entries, _ := os.ReadDir(p.Path)
			t.Fatalf("killed at step %d: the folder no longer looks like a prefix (holds %v): the next destroy would refuse it", k, entries)
		}
		if k > 0 && p.Initialized() {
			t.Errorf("killed at step %d: still initialized after files were removed", k)
		}
		if err := Remove(p); err != nil {
			t.Fatalf("resuming after step %d: %v", k, err)
		}
		if _, err := os.Lstat(p.Path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("resuming after step %d left the folder: %v", k, err)
		}
	}
	// initialized, 7 entries (id_rsa, id_rsa.pub, metadata, and the
	// logs, images, scripts, virt folders), uuid, the folder.
	if steps < 10 {
		t.Fatalf("the removal took %d steps, want every entry removed on its own and the markers last", steps)
	}
}

// Every file a prefix writes has an exact mode whatever the umask: the
// private key and the VM specs (which hold passwords) are the owner's
// only.
func TestPrefixFileModes(t *testing.T) {
	want := map[string]fs.FileMode{
		UUIDFile:        0o644,
		InitializedFile: 0o644,
		PrivateKeyFile:  0o600,
		PublicKeyFile:   0o644,
		MetadataFile:    0o644,
		"virt/env":      0o644,
		"virt/net-n0":   0o644,
		"virt/vm-vm0":   0o600,
	}
	for _, umask := range []int{0, 0o022, 0o077} {
		t.Run("umask "+strconv.FormatInt(int64(umask), 8), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			p := fullPrefix(t, t.TempDir())
			for rel, mode := range want {
				st, err := os.Stat(filepath.Join(p.Path, rel))
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != mode {
					t.Errorf("%s: mode %o, want %o", rel, st.Mode().Perm(), mode)
				}
			}
			b, _ := os.ReadFile(filepath.Join(p.Path, "virt/vm-vm0"))
			if !strings.Contains(string(b), "s3cret") {
				t.Fatalf("the VM spec does not hold the password the test checks the mode for: %s", b)
			}
		})
	}
}

// A workdir whose last prefix goes is removed with its `current` link and
// lago's temporary files, but kept when it holds anything else.
func TestWorkdirRemoveKeepsOtherFiles(t *testing.T) {
	root := t.TempDir()
	p := fullPrefix(t, root)
	mustWriteFile(t, filepath.Join(p.Workdir.Path, "README"), "mine")
	if err := os.Symlink(DefaultPrefixName, filepath.Join(p.Workdir.Path, ".current.tmp-1-0")); err != nil {
		t.Fatal(err)
	}
	err := p.Workdir.RemovePrefix(p.Name)
	if !errors.Is(err, ErrWorkdirNotEmpty) || !strings.Contains(err.Error(), "README") {
		t.Fatalf("RemovePrefix = %v, want ErrWorkdirNotEmpty naming README", err)
	}
	entries, _ := os.ReadDir(p.Workdir.Path)
	if len(entries) != 1 || entries[0].Name() != "README" {
		t.Errorf("workdir holds %v, want only README", entries)
	}
	// Once the user's file is gone, the workdir goes.
	if err := os.Remove(filepath.Join(p.Workdir.Path, "README")); err != nil {
		t.Fatal(err)
	}
	if err := p.Workdir.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p.Workdir.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty workdir left: %v", err)
	}
}

func mustWriteFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
