package engine

import (
	"context"
	"errors"
	"testing"
)

func TestCheckSpace(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	if err := e.CheckSpace(); err != nil {
		t.Fatalf("default reserve on a test machine: %v", err)
	}
	e.Close()
	full, err := Open(context.Background(), Options{Dir: dir, MinFreeBytes: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	if err := full.CheckSpace(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("CheckSpace with an impossible reserve: %v", err)
	}
}
