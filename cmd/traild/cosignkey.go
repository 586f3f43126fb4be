package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// The node's own checkpoint cosigning key lives in its data directory.
// Unlike the log key it is never shared: each node's cosignature says
// that this copy of the log gives this root.
const (
	cosignKeyFile  = "cosign.key"
	cosignVKeyFile = "cosign.vkey"
)

// cosignKey is a node's cosigning key pair.
type cosignKey struct {
	signer note.Signer
	vkey   string
}

// cosignKeyName is the key's name in signature lines:
// "<log name>/node/<node id>".
func cosignKeyName(logName, nodeID string) string { return logName + "/node/" + nodeID }

// loadCosignKey reads the node's cosigning key, creating it on the node's
// first start with this version (a key of its own needs no coordination:
// operators publish the verifier key, cosign.vkey, with the log's).
func loadCosignKey(dataDir, logName, nodeID string, rand io.Reader) (*cosignKey, error) {
	skeyPath, vkeyPath := filepath.Join(dataDir, cosignKeyFile), filepath.Join(dataDir, cosignVKeyFile)
	skey, err := readKeyFile(skeyPath)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := generateLogKey(cosignKeyName(logName, nodeID), skeyPath, vkeyPath, rand); err != nil {
			return nil, fmt.Errorf("cosigning key: %w", err)
		}
		skey, err = readKeyFile(skeyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("cosigning key %s: %w", skeyPath, err)
	}
	vkey, err := readKeyFile(vkeyPath)
	if err != nil {
		return nil, fmt.Errorf("cosigning verifier key %s: %w", vkeyPath, err)
	}
	signer, err := merkle.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("cosigning key %s: %w", skeyPath, err)
	}
	verifier, err := merkle.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("cosigning verifier key %s: %w", vkeyPath, err)
	}
	if err := matchKeys(signer, verifier); err != nil {
		return nil, fmt.Errorf("cosigning key %s and %s do not match: %w", skeyPath, vkeyPath, err)
	}
	if want := cosignKeyName(logName, nodeID); signer.Name() != want {
		return nil, fmt.Errorf("cosigning key %s is named %q, not %q (a data directory belongs to one node of one log)", skeyPath, signer.Name(), want)
	}
	return &cosignKey{signer: signer, vkey: vkey}, nil
}
