package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
	"github.com/trailaudit/trail/shred"
)

// Default file names of the log key, in the data directory or in the
// directory traild keygen writes to.
const (
	skeyName = "log.skey"
	vkeyName = "log.vkey"
)

// logKey is the log's key pair after every check: the signer the server
// signs checkpoints with, and the public key auditors verify them with.
type logKey struct {
	signer   note.Signer
	vkey     string
	vkeyPath string
	sealing  *shred.Keyring
	// material is the private key text, the default sealing secret's.
	material []byte
}

// id names the key the way signature lines and trailctl do: name+hash.
func (k *logKey) id() string { return fmt.Sprintf("%s+%08x", k.signer.Name(), k.signer.KeyHash()) }

// logKeyPresent reports whether the key pair exists. One file without the
// other is an error: generating the missing half would produce a key pair
// that does not belong together.
func logKeyPresent(skeyPath, vkeyPath string) (bool, error) {
	s, err := exists(skeyPath)
	if err != nil {
		return false, fmt.Errorf("log key: %w", err)
	}
	v, err := exists(vkeyPath)
	if err != nil {
		return false, fmt.Errorf("log key: %w", err)
	}
	switch {
	case s && !v:
		return false, fmt.Errorf("log key %s exists but its verifier key %s is missing", skeyPath, vkeyPath)
	case v && !s:
		return false, fmt.Errorf("log verifier key %s exists but the log key %s is missing", vkeyPath, skeyPath)
	}
	return s, nil
}

// loadLogKey reads the key pair and refuses it unless the private key
// parses, the verifier key is its public half, and its name is logName
// (checkpoint origins start with the log name, and auditors look the key
// up by it).
func loadLogKey(skeyPath, vkeyPath, logName string, log *slog.Logger) (*logKey, error) {
	skey, err := readKeyFile(skeyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("log key %s is missing: copy the cluster's log key there or set log_key_file", skeyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	vkey, err := readKeyFile(vkeyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("log verifier key %s is missing: copy the cluster's log.vkey there or set log_vkey_file", vkeyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("log verifier key: %w", err)
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("log key %s is not a signed-note private key: %w", skeyPath, err)
	}
	verifier, err := merkle.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("log verifier key %s is not a signed-note verifier key: %w", vkeyPath, err)
	}
	if signer.Name() != logName {
		return nil, fmt.Errorf("log key %s is named %q but log_name is %q", skeyPath, signer.Name(), logName)
	}
	if err := matchKeys(signer, verifier); err != nil {
		return nil, fmt.Errorf("log verifier key %s does not match log key %s: %w", vkeyPath, skeyPath, err)
	}
	if fi, err := os.Stat(skeyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("log key is readable by other users", "file", skeyPath, "mode", fi.Mode().Perm().String())
	}
	// The sealing secret (crypto-shredding) comes from the log key, which
	// every node of a cluster already holds: nothing more to distribute.
	sealing, err := shred.NewKeyring([]byte(skey))
	if err != nil {
		return nil, fmt.Errorf("log key %s: %w", skeyPath, err)
	}
	return &logKey{signer: signer, vkey: vkey, vkeyPath: vkeyPath, sealing: sealing, material: []byte(skey)}, nil
}

// logKeySecret names, among sealing_previous_key_files, the secret
// derived from the log key (the default), for a rotation away from it.
const logKeySecret = "log_key"

// loadSealingKey sets the node's sealing secrets: the one in path (else
// the one derived from the log key) and, during a rotation, the previous
// ones (docs/erasure.md).
func loadSealingKey(path string, previous []string, key *logKey, log *slog.Logger) error {
	if path == "" && len(previous) == 0 {
		return nil
	}
	current := key.material
	if path != "" {
		var err error
		if current, err = readSealingFile(path, log); err != nil {
			return err
		}
	}
	var prev [][]byte
	for _, p := range previous {
		if p == logKeySecret {
			prev = append(prev, key.material)
			continue
		}
		m, err := readSealingFile(p, log)
		if err != nil {
			return err
		}
		prev = append(prev, m)
	}
	k, err := shred.NewKeyring(current, prev...)
	if err != nil {
		return fmt.Errorf("sealing keys: %w", err)
	}
	key.sealing = k
	return nil
}

// readSealingFile reads a sealing secret file: base64 of at least 32
// random bytes. Random bytes, not a passphrase: the cluster replicates a
// check value of the secret, against which a guessable one could be tried
// offline.
func readSealingFile(path string, log *slog.Logger) ([]byte, error) {
	text, err := readKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	material, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("sealing key %s: want base64 of at least 32 random bytes (head -c 32 /dev/urandom | base64): %v", path, err)
	}
	if len(material) < shred.SecretSize {
		return nil, fmt.Errorf("sealing key %s: shred: sealing secret of %d bytes, need at least %d", path, len(material), shred.SecretSize)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("sealing key is readable by other users", "file", path, "mode", fi.Mode().Perm().String())
	}
	return material, nil
}

// matchKeys proves verifier is signer's public key by signing a note and
// opening it: name and hash alone would not catch a verifier key edited to
// carry the right hash in front of another public key.
func matchKeys(signer note.Signer, verifier note.Verifier) error {
	if signer.Name() != verifier.Name() || signer.KeyHash() != verifier.KeyHash() {
		return fmt.Errorf("key %s+%08x vs %s+%08x", signer.Name(), signer.KeyHash(), verifier.Name(), verifier.KeyHash())
	}
	msg, err := note.Sign(&note.Note{Text: "traild key check\n"}, signer)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if _, err := note.Open(msg, note.VerifierList(verifier)); err != nil {
		return fmt.Errorf("signature does not verify: %w", err)
	}
	return nil
}

// generateLogKey creates a new key pair named name. It never overwrites:
// replacing a log key orphans every checkpoint signed with the old one.
func generateLogKey(name, skeyPath, vkeyPath string, rand io.Reader) (vkey string, err error) {
	skey, vkey, err := merkle.GenerateKey(name, rand)
	if err != nil {
		return "", err
	}
	for _, p := range []string{skeyPath, vkeyPath} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return "", fmt.Errorf("log key: %w", err)
		}
	}
	// The verifier key goes second: a crash in between leaves a private key
	// without its public half, which the next start reports, rather than a
	// published public key whose private half is lost.
	if err := createExclusive(skeyPath, []byte(skey+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("log key: %w", err)
	}
	if err := createExclusive(vkeyPath, []byte(vkey+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("log verifier key: %w", err)
	}
	return vkey, nil
}

func readKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// createExclusive writes a new file with mode perm, failing if path
// exists. The content is written to a temporary file first and hard-linked
// into place, so path never exists with partial content.
func createExclusive(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		return err // fs.ErrExist when path is already there
	}
	return syncDir(dir)
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}
