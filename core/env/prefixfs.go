package env

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/core/version"
)

// writeFileAtomic writes data to path through a temporary file in the same
// folder and a rename, so a reader (or a kill -9) never sees half a file.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeJSONAtomic writes v indented by 4, as the original does.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFileAtomic(path, b, 0o644)
}

// newUUID returns 32 random hex characters.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make uuid: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// createPrefix makes the prefix folder with its uuid, ssh keys, metadata
// and empty logs/images/virt folders, but no `initialized`. The folder
// must not exist: two inits of one prefix must not share it. The uuid is
// written first, so anything leased or created later can be traced back
// to (and removed with) this prefix.
func createPrefix(path string) (uuid string, err error) {
	if err := os.Mkdir(path, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", userErrorf("prefix %s already exists", path)
		}
		return "", fmt.Errorf("create prefix %s: %w", path, err)
	}
	uuid, err = newUUID()
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(path, fileUUID), []byte(uuid), 0o644); err != nil {
		return "", err
	}
	for _, d := range []string{dirLogs, dirImages, dirVirt} {
		if err := os.Mkdir(filepath.Join(path, d), 0o755); err != nil {
			return "", fmt.Errorf("create prefix %s: %w", path, err)
		}
	}
	if err := writeKeys(path); err != nil {
		return "", err
	}
	meta := map[string]string{"lago_version": version.Version}
	if err := writeJSONAtomic(filepath.Join(path, "metadata"), meta); err != nil {
		return "", err
	}
	return uuid, nil
}

// writeKeys makes the prefix's ssh key pair (id_rsa, id_rsa.pub). RSA,
// because the guests of old templates know no other key type.
func writeKeys(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate ssh key: %w", err)
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pub, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("encode ssh public key: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(path, fileKey), priv, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(path, fileKey+".pub"), ssh.MarshalAuthorizedKey(pub), 0o644)
}

// writeSpecs writes every net and VM spec, then virt/env, which names them:
// a prefix whose virt/env exists has all its specs.
func writeSpecs(path string, nets []spec.Net, vms []spec.VM) error {
	var names spec.Env
	names.Nets, names.VMs = []string{}, []string{}
	for i := range nets {
		names.Nets = append(names.Nets, nets[i].Name)
		if err := writeJSONAtomic(filepath.Join(path, dirVirt, "net-"+nets[i].Name), &nets[i]); err != nil {
			return err
		}
	}
	for i := range vms {
		names.VMs = append(names.VMs, vms[i].Name)
		if err := writeJSONAtomic(filepath.Join(path, dirVirt, "vm-"+vms[i].Name), &vms[i]); err != nil {
			return err
		}
	}
	return writeJSONAtomic(filepath.Join(path, dirVirt, fileEnv), names)
}
