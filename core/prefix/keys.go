package prefix

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// RSABits is the size of generated RSA keys: the original's ssh-keygen
// default of its time, and fast enough to make at every init.
const RSABits = 2048

// GenerateKeyPair writes a new ssh key pair: the private key in OpenSSH
// format (read by OpenSSH and ssh.ParsePrivateKey) with mode 0600, and the
// public key as an authorized_keys line ending in comment. keyType is
// "rsa" (default) or "ed25519"; the file names stay id_rsa and id_rsa.pub
// either way, as the original's layout names them.
func GenerateKeyPair(privPath, pubPath, keyType, comment string) error {
	var priv crypto.PrivateKey
	var pub crypto.PublicKey
	switch keyType {
	case "", "rsa":
		k, err := rsa.GenerateKey(rand.Reader, RSABits)
		if err != nil {
			return fmt.Errorf("generate ssh key: %w", err)
		}
		priv, pub = k, &k.PublicKey
	case "ed25519":
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generate ssh key: %w", err)
		}
		priv, pub = k, p
	default:
		return fmt.Errorf("generate ssh key: unknown key type %q: want rsa or ed25519", keyType)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return fmt.Errorf("encode ssh private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return fmt.Errorf("encode ssh public key: %w", err)
	}
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(sshPub)), "\n")
	if comment != "" {
		line += " " + comment
	}
	if err := WriteFileAtomic(privPath, pem.EncodeToMemory(block), SecretMode); err != nil {
		return fmt.Errorf("write ssh private key: %w", err)
	}
	if err := WriteFileAtomic(pubPath, []byte(line+"\n"), PublicMode); err != nil {
		return fmt.Errorf("write ssh public key: %w", err)
	}
	return nil
}
