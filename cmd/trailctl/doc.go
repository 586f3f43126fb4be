// Command trailctl is Trail's command-line client, offline verifier,
// witness and operator tool.
//
//	trailctl COMMAND [arguments] [flags]
//
// Flags may come before, between or after the arguments; "trailctl
// COMMAND -h" lists a command's flags.
//
// # Connecting
//
// Every command except verify talks gRPC to one Trail node:
//
//	--addr HOST:PORT   server address; default $TRAIL_ADDR, else 127.0.0.1:7070
//	                   (traild's default gRPC listener)
//	--token T          API key, sent as "authorization: Bearer T"; default $TRAIL_TOKEN
//	--token-file F     read the API key from F (keeps it out of ps); default $TRAIL_TOKEN_FILE
//	--tls              use TLS; the default for every non-loopback address
//	--ca F             verify the server against the PEM bundle F (implies --tls); $TRAIL_CA
//	--cert F --key F   client certificate for mTLS (implies --tls); $TRAIL_CERT, $TRAIL_KEY
//	--server-name N    TLS name to verify, when it differs from the --addr host
//	--insecure         plaintext to a non-loopback address (plaintext is otherwise
//	                   the default only for loopback)
//	--timeout D        deadline of each RPC (default 30s); for streams, of each
//	                   acknowledgement (append --jsonl); tail has none
//	--json             JSON output with proto field names, one object per line,
//	                   instead of tables
//
// Ingest, read and proof calls that fail with UNAVAILABLE (a leader
// election, a restarting node) are retried with backoff: appends are
// idempotent by event_id. Admin calls are not retried.
//
// # Commands
//
// Producers:
//
//	append --tenant T --event-id ID --category C --action A --actor ID [--outcome O]
//	       [--actor-type --actor-name --actor-role... --actor-ip --actor-agent --session
//	        --subject --target-type --target-id --pii-field... --purpose --source
//	        --trace-id --occurred-at (default now) --attr K=V...]
//	append - [flags]                one event as protojson on stdin; flags set override it
//	                                (enum values in full or short: CATEGORY_DATA_ACCESS, data_access)
//	append --jsonl FILE|- [--batch 500 --batch-bytes 4MiB --window 4] [flags]
//	                                JSON Lines of events over one AppendStream, one durable
//	                                ack per batch, a progress bar on stderr when it is a
//	                                terminal and the load takes over a second; prints one
//	                                receipt (or rejection) per input line
//	tail TENANT [--partition P [--from-leaf N]]
//	                                stream new entries; with --json the output is a chain
//	                                file (below); resumes after a slow-consumer cut
//	siem TENANT --sink URL --state FILE [--format ocsf|cef --from-start
//	     --hmac-key-file FILE --sink-ca FILE --batch 100 --flush 1s]
//	                                forward the tenant's entries to a SIEM: OCSF JSON or
//	                                CEF, over syslog (tcp:// or tls://, octet-counted) or
//	                                an HMAC-signed webhook (https://); at least once, in
//	                                log order, resuming from FILE after a stop or crash
//
// Auditors:
//
//	get TENANT EVENT_ID | get TENANT --partition P --leaf N
//	search TENANT [QUERY] [--actor --subject --target TYPE/ID --category --action
//	       --purpose --pii-field --from --to --newest --limit N --cursor C --all
//	       --vkey FILE]
//	                                QUERY is the query syntax: actor:alice,bob
//	                                category:data_access -action:user.login "a phrase"
//	                                word prefix* from:2026-01-01 (fields: actor, subject,
//	                                target, category, action, purpose, pii, from, to,
//	                                text); flags repeat for alternatives and combine with
//	                                it; with --vkey every hit is proven against its
//	                                partition's signed checkpoint
//	aggregate TENANT [QUERY] --by FIELD|hour|day|month [--limit N] [filter flags]
//	                                counts from the index: the largest groups of a field
//	                                (actor, subject, target, category, action, purpose,
//	                                pii_field) or a timeline (UTC buckets)
//	search-settings get|set TENANT [--text-attr KEY... | --none | --reset]
//	                                the attributes full-text search reads (set: admin)
//	privacy get|set TENANT [--seal | --no-seal]
//	                                whether the tenant seals subject payloads under each
//	                                subject's data key (set: admin)
//	erase --tenant T --subject S --reason R [--reference REF] [-o FILE]
//	                                erase the subject's data key (privacy officer): their
//	                                payloads become unreadable, proofs and chain still
//	                                verify; prints (and with -o writes) the signed receipt
//	erasures TENANT [--subject S]   the tenant's erasure receipts
//	sealing rotate                  make the node's sealing secret the cluster's and
//	                                re-wrap every data key under it (admin)
//	partitions TENANT
//	checkpoint TENANT PARTITION [--size N] [--out FILE] [--vkey FILE] [--cosigned]
//	                                --cosigned: with every node's cosignature (each node
//	                                recomputes the root from its own copy)
//	prove TENANT EVENT_ID --vkey FILE [--size N] [--out FILE]
//	consistency TENANT PARTITION FROM TO --vkey FILE [--out FILE]   (TO 0: current size)
//	export --tenant T [--from TIME --to TIME --actor ID --subject ID --target TYPE/ID
//	       --category C --action A --purpose P --pii-field F --min-index N] [-o FILE]
//	       [--vkey FILE]
//	                                download an attested export bundle (below) of the
//	                                tenant's entries sequenced in [from, to), optionally
//	                                filtered (--subject needs the privacy_officer role);
//	                                -o defaults to the server's file name, - is stdout;
//	                                the file appears only once complete. With --vkey it
//	                                is then verified as verify --bundle does. The export
//	                                streams and has no deadline; it is itself recorded in
//	                                the _system tenant with its filters, entry count and
//	                                manifest digest
//	report pii --tenant T --subject S [--from TIME --to TIME] [--format json|csv|pdf|bundle]
//	       [--min-index N] [-o FILE] [--vkey FILE]
//	                                the PII access report: every data_access event on the
//	                                data subject S (who, role, fields, purpose, when), with
//	                                accesses lacking a valid purpose code flagged; needs
//	                                the privacy_officer (or admin) role
//	report history --tenant T --target-type X --target-id Y [--from --to --format ...]
//	                                the entity history: every event on X/Y, oldest first,
//	                                with each field change's before and after value
//	                                (chain of custody); any role that may read T
//
// Reports are attested (see "Report file" below). Each download is one
// run with its own attestation and digest; --format bundle gets the JSON,
// CSV and PDF of one run in a zip archive. -o defaults to the server's
// file name in the current directory, - is stdout; the file appears only
// once complete. With --vkey (any format) it is then verified as verify
// --report does. --timeout bounds the wait for each chunk; the
// first arrives once the server has built the whole report (at most
// 100000 rows: narrow --from/--to beyond that). Each report is recorded
// in the _system tenant with its parameters, row count and digest.
//
// prove and consistency verify what they fetch exactly as verify does, and
// additionally that it answers the question asked (that tenant, partition,
// event and sizes). Their --out files are written before verification, so
// a proof that fails is kept as evidence. prove --tlog-proof FILE also
// saves the proof as a C2SP tlog-proof (see "tlog-proof file" below).
// prove --witness-url URL proves the event against the latest checkpoint
// the witness with that monitoring prefix cosigned for its partition,
// requires the log's checkpoint of that size to be the one the witness
// cosigned, and keeps the cosignature with the proof.
//
// Offline verification (no network code at all):
//
//	verify --vkey FILE --proof FILE        [--tenant T --partition P --event ID]
//	verify --vkey FILE --tlog-proof FILE   [--witness-vkey FILE]... [--min-witnesses N] [--leaf-hash HEX] [--tenant T --partition P --event ID]
//	verify --vkey FILE --consistency FILE  [--tenant T --partition P]
//	verify --vkey FILE --checkpoint FILE   [--witness-vkey FILE]... [--min-witnesses N] [--tenant T --partition P]
//	verify [--vkey FILE] --chain FILE [--checkpoint FILE] [--tenant T]
//	verify --vkey FILE --bundle FILE       [--tenant T]
//	verify --vkey FILE --report FILE       [--tenant T]
//	verify --vkey FILE --erasure FILE      [--tenant T]
//	       any of them with --cosigners FILE [--quorum N]: checkpoints must also carry
//	       valid cosignatures by N (default: a majority) of the node keys in FILE
//
// Each check prints what it established, for example:
//
//	OK checkpoint trail/acme/2026-11 size 1042 root 5f1c… signed by key trail+1a2b3c4d
//	OK inclusion of leaf 17 (event e-123) in tree of size 1042 of trail/acme/2026-11
//	OK consistency of trail/acme/2026-11 from size 1000 to size 1042
//	OK chain of 500 entries, leaves 0..499 of acme/2026-11
//	NOTE the chain starts at leaf 0 of 2026-12, which links to partition 2026-11 (...)
//
// and on failure exits 1 with "FAILED: <what did not hold>". File names may
// be - for stdin (one of them at most).
//
// Witness:
//
//	watch TENANT --vkey FILE --state-dir DIR [--partition P] [--interval 30s] [--once]
//
// watch keeps, per partition, the last checkpoint it verified in
// DIR/TENANT/YYYY-MM.checkpoint (the signed note as received, replaced
// atomically). Each poll fetches the partition's current checkpoint,
// verifies its signature and origin, and compares it with the saved one:
// the same size must have the same root; a larger size must come with a
// consistency proof from the saved size, which is verified; a smaller size
// is a rollback. Only then is the new checkpoint saved. A partition seen
// for the first time is trusted on first use. On any contradiction watch
// prints an INCONSISTENCY report holding the conflicting signed notes to
// stderr, saves it as DIR/TENANT/YYYY-MM.inconsistency-TIME.txt, and exits 1.
// Network errors are retried at the next poll (with --once they exit 3).
// Point a witness at one node: reads are served from each node's applied
// state, so a lagging follower behind a load balancer would show an older
// (smaller) checkpoint, which the witness reports as a rollback.
//
//	witness keygen NAME --out FILE
//	witness serve --key FILE --log-vkey FILE [--origin-prefix P] --state-dir DIR [--listen 127.0.0.1:7380]
//
// witness serve is a C2SP tlog-witness (c2sp.org/tlog-witness), for Trail
// or any log that signs C2SP checkpoints: it cosigns, with Ed25519
// cosignature/v1, each checkpoint signed by a --log-vkey key that extends
// the one it last cosigned for the origin, and refuses forks and rollbacks
// with the protocol's status codes. witness keygen writes the private key
// (mode 0600) and FILE.pub, the verifier key that logs and auditors
// configure. See docs/witness.md.
//
// Operators:
//
//	cluster status
//	cluster join ID RAFT_ADDR
//	cluster remove ID
//	cluster transfer-leader [ID]
//	keys create --role producer|auditor|privacy_officer|admin [--tenant T]... [--description D]
//	keys list
//	keys revoke ID
//	anomaly get TENANT
//	anomaly set TENANT [--enable|--disable] [--max-subjects-per-hour N]
//	       [--working-hours HH:MM-HH:MM|none --time-zone ZONE --working-days 1-5]
//	       [--purpose CODE... | --any-purpose]
//	                                flags not given keep the tenant's current values
//	integrity verify [--tenant T [--partition P]] [--vkey FILE]
//	                                the node re-hashes its stored entries and tiles now
//	                                (every tenant by default) and compares each partition's
//	                                root with its peers'; prints the report, exits 1 on a
//	                                violation. With --vkey the report's signed note is
//	                                checked against the log key. Covers that node's copy
//	                                only; nodes also verify themselves on a schedule
//	                                (traild integrity_interval)
//	retention list TENANT           the effective policy of every category (days, default or set)
//	retention set TENANT CATEGORY DAYS | retention set TENANT CATEGORY --reset
//	                                how long the tenant keeps the category's payloads,
//	                                730 to 3653 days; --reset restores the default
//	retention dry-run [--tenant T] [--as-of TIME] [--limit N]
//	                                the expired entries a sweep would prune (every tenant by
//	                                default), which holds keep which, and the sealed
//	                                partitions whose segment file would be dropped
//	retention sweep [--tenant T]    prune expired payloads now; the leader also sweeps every
//	                                traild retention_interval. Each pruning is logged as a
//	                                signed tombstone in the _system tenant
//	holds create --tenant T --case REF --reason R [--subject S --actor A --target-type TT
//	       --target-id ID --category C --from TIME --to TIME]
//	                                a legal hold: entries of T matching every scope flag
//	                                given (sequencer time in [from, to)) are never pruned
//	holds release ID --reason R
//	holds list [--tenant T] [--all] active holds; --all adds released ones
//
// Retention and hold commands need an admin key. Creating and releasing a
// hold, and changing a policy, are recorded in the _system tenant and in
// the tenant concerned.
//
// Security analysts (any key that may read the tenant):
//
//	subscribe TENANT [--type T]...  domain events as they happen, one line each:
//	                                audit.event.recorded (leaf ranges, batched),
//	                                audit.security_anomaly, audit.integrity.verified,
//	                                audit.integrity.violation, audit.partition.sealed
//
// # Trust
//
// The verifier trusts exactly one thing: the log's public key (--vkey, a
// file holding the signed-note verifier key "name+hash+base64key"). Every
// checkpoint must carry a valid Ed25519 signature by it, and its origin
// must be "<log>/<tenant>/<YYYY-MM>" where <log> is --log, by default the
// key's name. Everything else (entries, proofs, chains) is checked against
// a signed checkpoint. Leaf hashes are always recomputed from the entry
// bytes as received, SHA-256(0x00 || entry_bytes) (RFC 9162); no entry is
// ever re-encoded to be verified. The unsigned convenience fields that
// accompany signed data (a Checkpoint's origin, tree_size and root_hash; a
// StoredEntry's leaf_hash and decoded entry) must agree with it.
//
// # Saved file formats
//
// All JSON is protojson with proto field names (as the REST API uses);
// bytes are standard base64. Decoders are strict: unknown fields are
// errors, since a verifier cannot vouch for what it does not understand.
//
// Checkpoint file (checkpoint --out, the witness state): the C2SP signed
// note exactly as served, i.e. the checkpoint body "<origin>\n<size>\n<base64
// root>\n", a blank line, and one or more signature lines "— <key name>
// <base64 signature>\n".
//
// Proof file (prove --out): one JSON object, the GetInclusionProofResponse
// with one added key, "tenant_id":
//
//	{
//	  "tenant_id":   "acme",
//	  "partition":   "2026-11",
//	  "leaf_index":  "17",
//	  "tree_size":   "1042",
//	  "leaf_hash":   "<base64 32 bytes>",
//	  "proof":       ["<base64 32 bytes>", ...],
//	  "checkpoint":  {"signed_note": "...", "origin": "...", "tree_size": "1042", "root_hash": "..."},
//	  "entry_bytes": "<base64 of the exact hashed entry>"
//	}
//
// verify --proof checks the checkpoint, that its origin names tenant_id and
// partition, that tree_size matches it, recomputes the leaf hash from
// entry_bytes (and requires leaf_hash, if present, to equal it), decodes the
// entry and requires it to record that tenant, partition and leaf_index,
// and verifies the audit path to the signed root. A pruned entry has no
// entry_bytes; then only leaf_hash is proven, and the output says so.
//
// tlog-proof file (prove --tlog-proof): a C2SP tlog-proof
// (c2sp.org/tlog-proof):
//
//	c2sp.org/tlog-proof@v1
//	extra <base64 of the exact hashed entry>     (absent for a pruned entry)
//	index <leaf index, decimal>
//	<base64 proof hash>                          (one per line, leaf's sibling first)
//	<empty line>
//	<the signed checkpoint note, with any witness cosignatures>
//
// verify --tlog-proof opens the checkpoint with --vkey and takes tenant and
// partition from its origin, then checks it as verify --proof does, the
// entry bytes of the extra line standing for entry_bytes (a pruned entry
// needs --leaf-hash). Each --witness-vkey key's cosignature/v1 is
// verified; at least --min-witnesses of them (default: all) must hold.
//
// Consistency file (consistency --out): the GetConsistencyProofResponse
// as JSON: from_size, to_size, proof (base64 hashes), from_checkpoint and
// to_checkpoint (Checkpoint objects as above). verify --consistency checks
// both checkpoints, that they share an origin and match the sizes, and the
// RFC 9162 consistency proof between their roots.
//
// Chain file (tail --json; any gap-free run of StoredEntry JSON): JSON
// Lines, one StoredEntry per line in log order, as the API returns them:
//
//	{"tenant_id":"acme","partition":"2026-11","leaf_index":"17","leaf_hash":"...","entry_bytes":"...","entry":{...}}
//
// Blank lines are ignored. verify --chain recomputes each leaf hash from
// entry_bytes (leaf_hash and entry, when present, must match), requires
// one tenant, leaf indexes without gaps, monotonic sequencer time inside
// the right month, and each entry's prev_leaf_hash to equal the previous
// entry's leaf hash (merkle.ChainVerifier). Where the chain moves to a new
// partition it must enter at leaf 0, whose prev_partition link must name
// the previous partition with its final size and, when the file holds all
// of that partition, the root its leaves hash to. The chain's first entry
// is reported: the tenant's very first entry (previous hash zero), leaf 0
// of a partition linked to an earlier one, or a mid-log start whose
// incoming link is outside the file. Pruned entries (no entry_bytes,
// "pruned":true) keep only their leaf hash; their content and incoming
// link cannot be checked, and the count is reported. With --checkpoint,
// the chain must hold leaves 0..size-1 of the checkpoint's partition, and
// the root rebuilt from their leaf hashes must equal the signed root: that
// proves the file is the complete, unaltered log up to that checkpoint.
//
// Export bundle (export; format trail-bundle/2, see package bundle): JSON
// Lines, each object opening with its "type": a header (log name, tenant,
// filters, creation time, the log key's name and hash), then per partition
// in month order its signed checkpoint followed by its entries in leaf
// order, in runs of consecutive leaves: a "run" line (its first leaf and
// the tree's compact range before it), the run's entries, each with its
// exact entry bytes (or "pruned":true and only the leaf hash), and a
// "run_end" line (the leaf after the run and a consistency proof from
// there to the checkpoint); a "consistency" record after a leaf 0 whose
// link records a different size for the previous partition than the
// bundle's checkpoint of it; and last
// a manifest with per-partition counts, the SHA-256 of every preceding
// line (an entry line by its partition, leaf index, pruned flag and leaf
// hash, which pin its bytes), and a note signed by the log key over both.
// trail-bundle/1 files
// (an inclusion proof per entry) are refused. verify --bundle reads the
// file once, in constant memory, and checks: the header names the
// trusted key (--vkey) and log (--log); every checkpoint's signature and
// origin; every entry's leaf hash recomputed from its bytes, each run's
// proof (the compact range and the run's leaves rebuild the root at the
// run's end, which must be the checkpoint's or consistent with it, so a
// forged hash or entry anywhere in the run fails), and that it decodes
// to an entry of that tenant, partition and leaf index, in time order,
// inside the declared filters; the
// prev_leaf_hash link between consecutive leaves; each partition link
// against the previous partition's checkpoint (directly, or by the
// consistency proof); and the manifest's digest, counts and signature, so
// a line changed, dropped, added, reordered or cut off is detected. It
// prints what was verified, for example:
//
//	OK checkpoint trail/acme/2026-11 size 1042 root 5f1c… signed by key trail+1a2b3c4d
//	OK 1042 entries (3 pruned) in 1 partitions: leaf hashes recomputed ..., by 1 run proofs, ...
//	OK chain: 1041 prev_leaf_hash links checked in 1 runs of consecutive leaves
//	OK manifest: sha256 9a0e… over all 1044 preceding lines and the counts, signed by key trail+1a2b3c4d
//	NOTE 3 entries are pruned (retention removed their payload): ...
//
// and on failure "FAILED: <file>: bundle: line N (type): <what did not
// hold>". Pruned entries are reported, not failures. A filtered export
// proves each entry it holds, not that no other entry matches.
//
// Report file (report pii|history; see package report). JSON: one
// JSON object {"content": ..., "attestation": ...}. content holds the kind
// (pii-access or entity-history), log name, tenant, generation time,
// parameters, summary and rows; every row carries its partition, leaf
// index, leaf hash and the entry's exact bytes (base64). The attestation
// holds "digest" (sha256 of content with insignificant whitespace
// removed), each partition's signed checkpoint, each row's inclusion proof
// against it, and a note signed by the log key whose body is
//
//	<log> report attestation v1
//	kind pii-access
//	tenant acme
//	generated 2026-11-23T11:45:44.123Z
//	rows 12
//	digest sha256:<hex>
//	checkpoint 2026-11 1042 <base64 root>
//
// (its second line is never a number, so it can never pass for a
// checkpoint). verify --report checks that note's signature and that it
// signs this content's digest, kind, tenant, time and row count; every
// checkpoint's signature, origin and that it is the one attested; every
// leaf hash recomputed from the entry bytes and its inclusion proof; and
// rebuilds every row, flag and count from the entry bytes and the
// parameters, so an edited field, a dropped, added or reordered row, or a
// wrong flag fails. Only whitespace may change in the file.
//
// CSV and PDF reports verify on their own too (verify --report tells the
// formats apart by their first bytes). A CSV carries every row's entry
// bytes and inclusion proof in its last two columns, and trailer records
// with the parameters, the signed checkpoints and the signed attestation:
// verify rebuilds the report from them, checks it as a JSON report, and
// requires every record of the file to be that report's. A PDF carries
// its JSON report as an attachment: verify checks the attachment, renders
// it again, and requires the file to be that rendering, page by page
// (only a PDF of the layout this trailctl renders, named in its Producer,
// can be checked; a PDF saved by another program fails). A bundle is a
// zip of the three files of one run: each must verify, all with the one
// digest. A CSV or PDF written before they carried this evidence is
// refused as not verifiable.
//
// # Exit codes
//
//	0  success; for verify, prove, consistency and watch: everything verified
//	1  verification failed, an inconsistency was found, the server refused
//	   the request (not found, permission denied, invalid argument), or
//	   events were rejected
//	2  usage error: bad flags or arguments, unreadable key format
//	3  I/O or network error: a file could not be read, the server could not
//	   be reached or did not answer in time; nothing was verified, retry
package main
