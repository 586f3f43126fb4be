package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail/shred"
)

// TestLoadSealingKey: the default secret comes from the log key; a file
// replaces it; a rotation keeps the previous ones, "log_key" naming the
// default; a bad file is refused with its name.
func TestLoadSealingKey(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	material := []byte("PRIVATE+KEY+trail+00000000+" + strings.Repeat("A", 40))
	derived, err := shred.NewKeyring(material)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "new.key"), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n")
	other := writeFile(t, filepath.Join(dir, "old.key"), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32))+"\n")
	fresh := func() *logKey { return &logKey{sealing: derived, material: material} }

	k := fresh()
	if err := loadSealingKey("", nil, k, log); err != nil || k.sealing != derived {
		t.Fatalf("default: %v", err)
	}
	k = fresh()
	if err := loadSealingKey(file, []string{logKeySecret, other}, k, log); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k.sealing.CheckValue(), derived.CheckValue()) || !k.sealing.Holds(derived.CheckValue()) {
		t.Fatal("the file's secret is not current, or the log key's is not kept as previous")
	}
	oldOnly, _ := shred.NewKeyring(bytes.Repeat([]byte{8}, 32))
	if !k.sealing.Holds(oldOnly.CheckValue()) {
		t.Fatal("a previous file's secret is not kept")
	}
	bad := writeFile(t, filepath.Join(dir, "bad.key"), "not base64!\n")
	if err := loadSealingKey(file, []string{bad}, fresh(), log); err == nil || !strings.Contains(err.Error(), "bad.key") {
		t.Fatalf("bad previous file: %v", err)
	}
}
