package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// cmdVersion prints the module version and the VCS revision the binary
// was built from, as the Go toolchain recorded them.
func cmdVersion(_ context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageErrorf("version takes no arguments")
	}
	fmt.Fprintln(e.stdout, versionString())
	return nil
}

func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "traild (no build information)"
	}
	s := "traild " + bi.Main.Version
	var rev, when, dirty string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.time":
			when = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		s += fmt.Sprintf(" (%.12s%s, %s)", rev, dirty, when)
	}
	return s + " " + bi.GoVersion
}
