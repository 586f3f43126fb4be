package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// value is one typed configuration field. Every source (file, environment,
// flag) hands it text, so a value means the same thing wherever it is
// written: YAML's own typing never decides what "on" or "0700" is.
type value interface {
	Set(text string) error
	String() string
}

type stringValue struct{ p *string }

func (v stringValue) Set(s string) error { *v.p = s; return nil }
func (v stringValue) String() string     { return *v.p }

type boolValue struct{ p *bool }

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not a boolean: want true or false", s)
	}
	*v.p = b
	return nil
}
func (v boolValue) String() string { return strconv.FormatBool(*v.p) }

// isBool lets the flag package accept "--insecure-plaintext" without "=true".
func (v boolValue) isBool() bool { return true }

type intValue struct{ p *int }

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return fmt.Errorf("%q is not a positive integer", s)
	}
	*v.p = n
	return nil
}
func (v intValue) String() string { return strconv.Itoa(*v.p) }

// percentValue is an integer from 0 to 100.
type percentValue struct{ p *int }

func (v percentValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 100 {
		return fmt.Errorf("%q is not a percentage from 0 to 100", s)
	}
	*v.p = n
	return nil
}
func (v percentValue) String() string { return strconv.Itoa(*v.p) }

type uintValue struct{ p *uint64 }

func (v uintValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return fmt.Errorf("%q is not a positive integer", s)
	}
	*v.p = n
	return nil
}
func (v uintValue) String() string { return strconv.FormatUint(*v.p, 10) }

type durationValue struct{ p *time.Duration }

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration such as 500ms, 10s or 5m", s)
	}
	*v.p = d
	return nil
}
func (v durationValue) String() string { return v.p.String() }

// offDurationValue is a positive duration, or "off", stored as -1.
type offDurationValue struct{ p *time.Duration }

func (v offDurationValue) Set(s string) error {
	if s == "off" {
		*v.p = -1
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is neither off nor a positive duration such as 30m or 1h", s)
	}
	*v.p = d
	return nil
}

func (v offDurationValue) String() string {
	if *v.p < 0 {
		return "off"
	}
	return v.p.String()
}

// sizeValue is a byte count, written as a plain number or with a unit:
// B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000).
type sizeValue struct{ p *int64 }

func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}
func (v sizeValue) String() string { return formatSize(*v.p) }

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first, so that "MiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

func parseSize(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a positive size such as 1048576, 64KiB or 256MiB", s)
	}
	return n * mult, nil
}

// formatSize prints the largest binary unit that divides n exactly.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// listValue is a comma-separated list; in the file it may also be a YAML
// sequence. Setting it replaces the whole list: a flag overrides the file's
// list rather than adding to it.
type listValue struct{ p *[]string }

func (v listValue) Set(s string) error {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	*v.p = out
	return nil
}
func (v listValue) String() string { return strings.Join(*v.p, ",") }

// enumValue is a string restricted to a fixed set of words.
type enumValue struct {
	p       *string
	allowed []string
}

func (v enumValue) Set(s string) error {
	if !slices.Contains(v.allowed, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(v.allowed, ", "))
	}
	*v.p = s
	return nil
}
func (v enumValue) String() string { return *v.p }

// usageError is a mistake in the command line itself; it exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// urlListValue is a comma-separated list of URLs that may carry
// credentials (nats://user:password@host). It shows them without their
// user part, so that `traild config` does not print a password.
type urlListValue struct{ p *string }

func (v urlListValue) Set(s string) error { *v.p = strings.TrimSpace(s); return nil }

func (v urlListValue) String() string {
	var out []string
	for item := range strings.SplitSeq(*v.p, ",") {
		item = strings.TrimSpace(item)
		if at := strings.LastIndex(item, "@"); at >= 0 {
			scheme, _, ok := strings.Cut(item, "://")
			if !ok {
				scheme = ""
			} else {
				scheme += "://"
			}
			item = scheme + "REDACTED@" + item[at+1:]
		}
		out = append(out, item)
	}
	return strings.Join(out, ",")
}
