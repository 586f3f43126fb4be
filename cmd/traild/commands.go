package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // a refusal to start, a failure while running, an unhealthy node
	exitUsage = 2 // bad flags or arguments
)

// command is one subcommand.
type command struct {
	name     string
	synopsis string
	summary  string
	run      func(ctx context.Context, e *env, args []string) error
}

// commands returns the command table; a function, so nothing global is
// mutable.
func commands() []command {
	return []command{
		{"serve", "[settings]", "run the node (the default command)", cmdServe},
		{"init", "[--bootstrap [--peers id=addr,...] | --join ADDR] [settings]", "prepare a new data directory without starting", cmdInit},
		{"keygen", "[--name trail] [--out DIR]", "generate a log key pair: DIR/log.skey and DIR/log.vkey", cmdKeygen},
		{"recover", "[--peers id=addr,...] [settings]", "offline: rewrite a stopped node's membership after its cluster lost quorum for good", cmdRecover},
		{"health", "[--addr HOST:PORT|URL] [--ca FILE] [settings]", "exit 0 if and only if the node's /readyz answers 200", cmdHealth},
		{"config", "[settings]", "print the effective configuration and where each value came from", cmdConfig},
		{"version", "", "print the version", cmdVersion},
	}
}

// run dispatches args and returns the process exit code. With no command,
// or flags first, it serves: `traild` alone must start a working node.
func run(ctx context.Context, e *env, args []string) int {
	name, rest := "serve", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, rest = args[0], args[1:]
	}
	if name == "help" || len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		printUsage(e.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return report(e.stderr, c.run(ctx, e, rest))
		}
	}
	fmt.Fprintf(e.stderr, "traild: unknown command %q\n\n", name)
	printUsage(e.stderr)
	return exitUsage
}

// report prints err as one line and maps it to an exit code.
func report(stderr io.Writer, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK // the flag package printed the help
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "traild: %s (see traild -h)\n", oneLine(err))
		return exitUsage
	}
	fmt.Fprintf(stderr, "traild: %s\n", oneLine(err))
	return exitError
}

// oneLine joins a (possibly joined) error's lines: refusals are one line,
// so they read well in a terminal and in a container's log.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: traild [COMMAND] [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The Trail server. Without a command it serves; with no flags at all it runs a")
	fmt.Fprintln(w, "single-node cluster on loopback with its data in ./trail-data.")
	fmt.Fprintln(w, "Run \"traild COMMAND -h\" for a command's flags; every setting is a flag, a")
	fmt.Fprintln(w, "TRAIL_* environment variable and a key of the --config YAML file.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.synopsis, c.summary)
	}
	tw.Flush()
}

// settingsUsage is the usage function of commands that take settings:
// the command's own flags, then every setting.
func settingsUsage(fs *flag.FlagSet, w io.Writer, synopsis string, own ...string) func() {
	return func() {
		fmt.Fprintf(w, "usage: %s %s\n\n", fs.Name(), synopsis)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, name := range own {
			f := fs.Lookup(name)
			arg, usage := flag.UnquoteUsage(f)
			if f.DefValue != "" && f.DefValue != "0s" {
				usage += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(tw, "  --%s %s\t%s\n", f.Name, arg, usage)
		}
		fmt.Fprintf(tw, "  --config FILE\tYAML configuration file (default $%s)\n", configEnv)
		tw.Flush()
		printSettingsUsage(w)
	}
}
