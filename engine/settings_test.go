package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestSettings(t *testing.T) {
	e := openEngine(t, t.TempDir())
	ctx := context.Background()
	if err := e.ApplySettings(ctx, 1, []SettingOp{{Key: "key/a", Value: []byte("1")}, {Key: "key/b", Value: []byte("2")}, {Key: "other", Value: []byte("3")}}); err != nil {
		t.Fatal(err)
	}
	if err := e.ApplySettings(ctx, 2, []SettingOp{{Key: "key/a", Delete: true}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	e.Settings(ctx, "key/", func(k string, v []byte) bool { got = append(got, k+"="+string(v)); return true })
	if strings.Join(got, ",") != "key/b=2" {
		t.Fatalf("settings: %v", got)
	}
	if _, err := e.Setting("key/a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted setting: %v", err)
	}
	// A bad op rejects the whole command, but the index advances.
	err := e.ApplySettings(ctx, 3, []SettingOp{{Key: "ok", Value: []byte("x")}, {Key: ""}})
	if !errors.Is(err, ErrBadSetting) || e.AppliedIndex() != 3 {
		t.Fatalf("bad op: %v, applied %d", err, e.AppliedIndex())
	}
	if _, err := e.Setting("ok"); !errors.Is(err, ErrNotFound) {
		t.Fatal("half of a rejected settings command was applied")
	}
	if err := e.Advance(4); err != nil || e.AppliedIndex() != 4 {
		t.Fatalf("Advance: %v %d", err, e.AppliedIndex())
	}
	if err := e.Advance(4); !errors.Is(err, ErrAlreadyApplied) {
		t.Fatalf("Advance replay: %v", err)
	}
}
