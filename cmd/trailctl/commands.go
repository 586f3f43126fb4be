package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// command is one subcommand. Groups ("cluster", "keys") are spelled with a
// space in name and dispatched on their first two arguments.
type command struct {
	name     string
	synopsis string // positional arguments, for the usage line
	summary  string
	run      func(ctx context.Context, e *env, args []string) error
}

// commands returns the command table. It is built on each call rather than
// held in a package variable: there is no global state to initialise.
func commands() []command {
	return []command{
		{"append", "[- | --jsonl FILE|-] [flags]", "append one event (from flags or JSON on stdin) or a JSON Lines file of events", cmdAppend},
		{"tail", "TENANT", "stream a tenant's new entries as they are appended", cmdTail},
		{"siem", "TENANT --sink URL --state FILE", "forward a tenant's entries to a SIEM as OCSF JSON or CEF (syslog over TCP/TLS, or a signed webhook), resuming where it stopped", cmdSIEM},
		{"get", "TENANT EVENT_ID", "show one entry, by event id or by --partition and --leaf", cmdGet},
		{"search", "TENANT [QUERY]", "search a tenant's entries: fields, full text, time (QUERY: actor:alice category:data_access \"bulk export\" from:2026-01-01)", cmdSearch},
		{"aggregate", "TENANT [QUERY] --by FIELD|hour|day|month", "count a tenant's events by a field's values or by time bucket", cmdAggregate},
		{"search-settings get", "TENANT", "show which attributes a tenant's full-text search reads", cmdSearchSettingsGet},
		{"search-settings set", "TENANT (--text-attr KEY... | --none | --reset)", "choose which attributes a tenant's full-text search reads (admin)", cmdSearchSettingsSet},
		{"partitions", "TENANT", "list a tenant's monthly partitions", cmdPartitions},
		{"checkpoint", "TENANT PARTITION", "fetch a partition's signed checkpoint", cmdCheckpoint},
		{"prove", "TENANT EVENT_ID --vkey FILE [--out FILE] [--tlog-proof FILE] [--witness-url URL]", "fetch an inclusion proof and verify it locally", cmdProve},
		{"consistency", "TENANT PARTITION FROM TO --vkey FILE", "fetch a consistency proof and verify it locally", cmdConsistency},
		{"export", "--tenant T [--from --to filters] [-o FILE] [--vkey FILE]", "download an attested export bundle of a tenant's log", cmdExport},
		{"report pii", "--tenant T --subject S [--from --to] [--format json|csv|pdf|bundle] [-o FILE] [--vkey FILE]", "download a PII access report: every data_access event on a data subject (privacy officer)", cmdReportPII},
		{"report history", "--tenant T --target-type X --target-id Y [--from --to] [--format json|csv|pdf|bundle] [-o FILE] [--vkey FILE]", "download an entity's history: every event on it with before/after changes", cmdReportHistory},
		{"verify", "--vkey FILE (--proof F | --tlog-proof F | --consistency F | --checkpoint F | --chain F | --bundle F | --report F | --erasure F)", "verify saved proofs, checkpoints, chains, export bundles and reports offline", cmdVerify},
		{"watch", "TENANT --state-dir DIR --vkey FILE", "witness: check every new checkpoint is consistent with the last one seen", cmdWatch},
		{"witness serve", "--state-dir DIR --key FILE --log-vkey FILE [--listen ADDR]", "run a C2SP tlog-witness: cosign a log's checkpoints that extend the last one cosigned", cmdWitnessServe},
		{"witness keygen", "NAME --out FILE", "create a witness key pair; prints the cosignature verifier key", cmdWitnessKeygen},
		{"cluster status", "", "show the Raft cluster as the node sees it", cmdClusterStatus},
		{"cluster join", "ID RAFT_ADDR", "add a voter to the cluster", cmdClusterJoin},
		{"cluster remove", "ID", "remove a node from the cluster", cmdClusterRemove},
		{"cluster transfer-leader", "[ID]", "hand leadership to ID, or to a node Raft picks", cmdClusterTransfer},
		{"keys create", "--role ROLE [--tenant T]...", "create an API key; its token is shown once", cmdKeysCreate},
		{"keys list", "", "list API keys", cmdKeysList},
		{"keys revoke", "ID", "revoke an API key", cmdKeysRevoke},
		{"retention list", "TENANT", "show a tenant's retention policy of every category (admin)", cmdRetentionList},
		{"retention set", "TENANT CATEGORY (DAYS | --reset)", "set how many days a tenant keeps a category's payloads (admin)", cmdRetentionSet},
		{"retention dry-run", "[--tenant T] [--as-of TIME]", "list the entries a sweep would prune, and what holds keep (admin)", cmdRetentionDryRun},
		{"retention sweep", "[--tenant T]", "prune expired payloads now, as the leader does every retention_interval (admin)", cmdRetentionSweep},
		{"holds create", "--tenant T --case REF --reason R [scope flags]", "place a legal hold: matching entries are never pruned (admin)", cmdHoldsCreate},
		{"holds release", "ID --reason R", "release a legal hold (admin)", cmdHoldsRelease},
		{"holds list", "[--tenant T] [--all]", "list legal holds, released ones with --all (admin)", cmdHoldsList},
		{"privacy get", "TENANT", "show whether a tenant seals subject payloads (crypto-shredding)", cmdPrivacyGet},
		{"privacy set", "TENANT (--seal | --no-seal)", "seal the changes and attributes of a tenant's events under each subject's data key, or stop (admin)", cmdPrivacySet},
		{"erase", "--tenant T --subject S --reason R [--reference REF] [-o FILE]", "erase a data subject's key: their sealed payloads become unreadable, every proof still verifies; prints the signed receipt (privacy officer)", cmdErase},
		{"erasures", "TENANT [--subject S]", "list a tenant's erasure receipts (privacy officer)", cmdErasures},
		{"sealing rotate", "", "make the node's current sealing secret the cluster's and re-wrap every data key under it (admin; docs/erasure.md)", cmdSealingRotate},
		{"anomaly get", "TENANT", "show a tenant's anomaly rules", cmdAnomalyGet},
		{"anomaly set", "TENANT [flags]", "change a tenant's anomaly rules (admin)", cmdAnomalySet},
		{"integrity verify", "[--tenant T [--partition P]] [--vkey FILE]", "re-hash a node's stored log now, compare roots with its peers, print the signed report (admin)", cmdIntegrityVerify},
		{"subscribe", "TENANT [--type T]...", "stream a tenant's domain events (recorded, sealed, anomalies, integrity)", cmdSubscribe},
	}
}

// run dispatches args to a command and returns the process exit code.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		printUsage(e.stderr)
		return exitUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		printUsage(e.stdout)
		return exitOK
	}
	global, args, err := leadingFlags(args)
	if err != nil {
		fmt.Fprintf(e.stderr, "trailctl: %v\n\n", err)
		printUsage(e.stderr)
		return exitUsage
	}
	cmd, rest, ok := lookup(args)
	if !ok {
		// Only the words that could name a command are echoed: never a
		// flag's value, which may be an API key.
		fmt.Fprintf(e.stderr, "trailctl: unknown command %q\n\n", strings.Join(commandWords(args), " "))
		printUsage(e.stderr)
		return exitUsage
	}
	err = cmd.run(ctx, e, append(global, rest...))
	if err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintf(e.stderr, "trailctl %s: %v\n", cmd.name, err)
	}
	return exitCode(err)
}

// leadingFlags splits off the connection and output flags given before the
// command ("trailctl --token T --addr A search ..."), which the command
// then parses as its own. Any other leading flag is an error, named
// without its value.
func leadingFlags(args []string) (flags, rest []string, err error) {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") {
		return nil, args, nil
	}
	fs := newFlagSet("")
	var conn connFlags
	conn.register(fs)
	fs.Bool("json", false, "")
	if err := fs.Parse(args); err != nil {
		name, _, _ := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		for _, a := range args {
			if strings.HasPrefix(a, "-") {
				if n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); fs.Lookup(n) == nil {
					name = n
					break
				}
			}
		}
		return nil, nil, fmt.Errorf("flag -%s cannot come before the command (only connection flags and --json can)", name)
	}
	rest = fs.Args()
	return args[:len(args)-len(rest)], rest, nil
}

// commandWords are the first two arguments that do not look like flags.
func commandWords(args []string) []string {
	var out []string
	for _, a := range args {
		if len(out) == 2 || strings.HasPrefix(a, "-") {
			break
		}
		out = append(out, a)
	}
	return out
}

// lookup finds the command named by the first one or two arguments.
func lookup(args []string) (command, []string, bool) {
	if len(args) == 0 {
		return command{}, nil, false
	}
	for _, c := range commands() {
		group, sub, grouped := strings.Cut(c.name, " ")
		switch {
		case !grouped && args[0] == c.name:
			return c, args[1:], true
		case grouped && args[0] == group && len(args) > 1 && args[1] == sub:
			return c, args[2:], true
		}
	}
	return command{}, nil, false
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: trailctl COMMAND [arguments] [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Trail's client, offline verifier, witness and operator tool.")
	fmt.Fprintln(w, "Run \"trailctl COMMAND -h\" for a command's flags. Exit codes: 0 ok, 1 verification")
	fmt.Fprintln(w, "failed or request refused, 2 usage error, 3 I/O or network error.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
}
