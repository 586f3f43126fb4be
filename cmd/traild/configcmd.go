package main

import (
	"context"
	"fmt"
	"text/tabwriter"
)

// cmdConfig prints the effective value of every setting and its source,
// to answer "which of my file, environment and flags won?".
func cmdConfig(_ context.Context, e *env, args []string) error {
	cf := newConfigFlags("config", e.stderr)
	cf.fs.Usage = settingsUsage(cf.fs, e.stderr, "[settings]")
	cfg, err := cf.parse(args, e.getenv)
	if err != nil {
		return err
	}
	if err := cfg.check(); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE")
	for _, s := range cf.all {
		v, src := s.field(cfg).String(), cfg.source(s.key)
		switch {
		case v == "" && src == sourceDefault && s.defDoc != "":
			v = "(" + s.defDoc + ")"
		case v == "":
			v = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.key, v, src)
	}
	return tw.Flush()
}
