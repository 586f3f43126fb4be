package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail/merkle"
)

// A node makes its cosigning key on first start, keeps it across
// restarts, and refuses a key that names another node.
func TestCosignKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := loadCosignKey(dir, "city.trail", "n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if k1.signer.Name() != "city.trail/node/n1" {
		t.Errorf("key name %q", k1.signer.Name())
	}
	fi, err := os.Stat(filepath.Join(dir, cosignKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", fi, err)
	}
	vkey, _ := os.ReadFile(filepath.Join(dir, cosignVKeyFile))
	if strings.TrimSpace(string(vkey)) != k1.vkey {
		t.Errorf("cosign.vkey %q, want %q", vkey, k1.vkey)
	}
	if _, err := merkle.NewVerifier(k1.vkey); err != nil {
		t.Fatal(err)
	}
	k2, err := loadCosignKey(dir, "city.trail", "n1", nil)
	if err != nil || k2.vkey != k1.vkey {
		t.Fatalf("restart: %v, key %q then %q", err, k1.vkey, k2.vkey)
	}
	if _, err := loadCosignKey(dir, "city.trail", "n2", nil); err == nil || !strings.Contains(err.Error(), `not "city.trail/node/n2"`) {
		t.Errorf("another node's key accepted: %v", err)
	}
	// A public key that is not the private key's half.
	other := t.TempDir()
	k3, _ := loadCosignKey(other, "city.trail", "n1", nil)
	os.WriteFile(filepath.Join(dir, cosignVKeyFile), []byte(k3.vkey+"\n"), 0o644)
	if _, err := loadCosignKey(dir, "city.trail", "n1", nil); err == nil {
		t.Error("mismatched key pair accepted")
	}
	if !bytes.Contains(vkey, []byte("city.trail/node/n1+")) {
		t.Errorf("vkey %q", vkey)
	}
}
