package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// newFlagSet returns an empty flag set for a command. Errors are returned,
// not printed: parseCommand decides where usage text goes.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("trailctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseCommand parses a command's arguments, allowing flags before, between
// and after positional arguments, and checks the positional count is within
// [minArgs, maxArgs] (maxArgs < 0: unbounded). -h prints the command's help
// to stdout and returns errHelp.
func parseCommand(e *env, cmd string, fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(e.stdout, cmd, fs)
		return nil, errHelp
	}
	if err != nil {
		return nil, usageErrorf("%v (see \"trailctl %s -h\")", err, cmd)
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		return nil, usageErrorf("usage: trailctl %s %s", cmd, synopsisOf(cmd))
	}
	return pos, nil
}

// parseInterspersed runs fs.Parse repeatedly: the flag package stops at the
// first positional argument, and "get acme e-1 --json" should work as well
// as "get --json acme e-1". Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func synopsisOf(name string) string {
	for _, c := range commands() {
		if c.name == name {
			return c.synopsis
		}
	}
	return ""
}

func printCommandHelp(w io.Writer, name string, fs *flag.FlagSet) {
	for _, c := range commands() {
		if c.name == name {
			fmt.Fprintf(w, "usage: trailctl %s %s\n\n%s\n\nflags:\n", c.name, c.synopsis, c.summary)
		}
	}
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// parseEnum maps a name to an enum value, accepting the short lowercase
// form ("data_access") as well as the proto name ("CATEGORY_DATA_ACCESS").
func parseEnum(kind, prefix, s string, values map[string]int32) (int32, error) {
	up := strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
	if v, ok := values[prefix+up]; ok && up != "UNSPECIFIED" {
		return v, nil
	}
	if v, ok := values[up]; ok && strings.HasPrefix(up, prefix) && up != prefix+"UNSPECIFIED" {
		return v, nil
	}
	return 0, fmt.Errorf("unknown %s %q (want one of %s)", kind, s, enumNames(prefix, values))
}

func enumNames(prefix string, values map[string]int32) string {
	names := make([]string, len(values)-1)
	for name, v := range values {
		if v > 0 && int(v) <= len(names) {
			names[v-1] = strings.ToLower(strings.TrimPrefix(name, prefix))
		}
	}
	return strings.Join(names, ", ")
}

func parseCategory(s string) (trailv1.Category, error) {
	v, err := parseEnum("category", "CATEGORY_", s, trailv1.Category_value)
	return trailv1.Category(v), err
}

func parseOutcome(s string) (trailv1.Outcome, error) {
	v, err := parseEnum("outcome", "OUTCOME_", s, trailv1.Outcome_value)
	return trailv1.Outcome(v), err
}

func parseRole(s string) (trailv1.Role, error) {
	v, err := parseEnum("role", "ROLE_", s, trailv1.Role_value)
	return trailv1.Role(v), err
}

// shortEnum prints an enum value the way parseEnum accepts it.
func shortEnum(prefix, name string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

// parseTime accepts RFC 3339 ("2026-11-02T09:00:00Z") or a UTC date
// ("2026-11-02", meaning its first instant).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-11-02T09:00:00Z) or a date (2026-11-02)", s)
}

// validTenant mirrors the server's tenant id syntax (1..64 of
// [A-Za-z0-9._-]). It matters here because tenant ids become path
// components of the witness state directory, so "." and ".." are refused.
func validTenant(s string) error {
	if s == "" || len(s) > 64 || s == "." || s == ".." {
		return fmt.Errorf("invalid tenant id %q", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("invalid tenant id %q: only letters, digits, '.', '-' and '_' are allowed", s)
		}
	}
	return nil
}

// validPartition checks the "YYYY-MM" partition name syntax.
func validPartition(s string) error {
	t, err := time.Parse("2006-01", s)
	if err != nil || t.Format("2006-01") != s {
		return fmt.Errorf("invalid partition %q: want YYYY-MM", s)
	}
	return nil
}
