package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
)

// cmdKeygen generates a log key pair into a directory, for clusters whose
// nodes are given a shared key rather than have the first node create it.
func cmdKeygen(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("traild keygen", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	name := fs.String("name", defaultLogName, "key `NAME`: the log name (log_name) of the cluster that will use it")
	out := fs.String("out", ".", "`DIR` to write "+skeyName+" (mode 0600) and "+vkeyName+" into")
	existOK := fs.Bool("exist-ok", false, "succeed without writing when a valid key pair named NAME is already in DIR")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if err := checkLogName(*name); err != nil {
		return usageErrorf("--name: %v", err)
	}
	skey, vkey := filepath.Join(*out, skeyName), filepath.Join(*out, vkeyName)
	if *existOK {
		present, err := logKeyPresent(skey, vkey)
		if err != nil {
			return err
		}
		if present {
			k, err := loadLogKey(skey, vkey, *name, slog.New(slog.NewTextHandler(e.stderr, nil)))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "log key %s already in %s; verifier key:\n%s\n", k.id(), *out, k.vkey)
			return nil
		}
	}
	pub, err := generateLogKey(*name, skey, vkey, e.rand)
	if err != nil {
		return err
	}
	printKeygen(e.stdout, skey, vkey, pub)
	return nil
}

func printKeygen(w io.Writer, skey, vkey, pub string) {
	fmt.Fprintf(w, "wrote %s (private: every node needs it, nobody else) and %s (public: give it to auditors)\n", skey, vkey)
	fmt.Fprintln(w, pub)
}
