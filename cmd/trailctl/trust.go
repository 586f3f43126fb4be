package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// maxKeyBytes bounds a verifier key file; real keys are under 100 bytes.
const maxKeyBytes = 4 << 10

// trust is all an auditor trusts: the log's public key and the log name the
// key signs for. Every checkpoint is opened through it, and every other
// claim (proofs, entries, chains) is checked against a checkpoint.
type trust struct {
	verifier note.Verifier
	logName  string
	// cosigners are the nodes' cosigning keys; a checkpoint must carry
	// valid cosignatures by at least quorum of them (0: none required).
	cosigners []note.Verifier
	quorum    int
}

// trustFlags are the flags that establish trust.
type trustFlags struct {
	vkeyFile      string
	logName       string
	cosignersFile string
	quorum        int
}

func (t *trustFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.vkeyFile, "vkey", "", "the log's verifier key (signed-note format \"name+hash+key\") in `FILE`")
	fs.StringVar(&t.logName, "log", "", "expected log `NAME`, the first part of every checkpoint origin (default: the key's name)")
	fs.StringVar(&t.cosignersFile, "cosigners", "", "the nodes' cosigning verifier keys (each node's cosign.vkey), one per line, in `FILE`: checkpoints must also be cosigned by --quorum of them")
	fs.IntVar(&t.quorum, "quorum", 0, "with --cosigners, the node cosignatures every checkpoint must carry (default: a majority of the keys listed)")
}

// load reads the key. A missing --vkey is a usage error; an unreadable
// file an I/O error; a file that is not a key a usage error, since the
// mistake is in what the user pointed at.
func (t *trustFlags) load() (trust, error) {
	if t.vkeyFile == "" {
		return trust{}, usageErrorf("--vkey FILE is required")
	}
	b, err := readFileLimit(t.vkeyFile, maxKeyBytes)
	if err != nil {
		return trust{}, err
	}
	v, err := merkle.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return trust{}, usageErrorf("--vkey %s: %v", t.vkeyFile, err)
	}
	name := t.logName
	if name == "" {
		name = v.Name()
	}
	tr := trust{verifier: v, logName: name}
	if err := t.loadCosigners(&tr); err != nil {
		return trust{}, err
	}
	return tr, nil
}

// loadCosigners reads --cosigners and settles the quorum.
func (t *trustFlags) loadCosigners(tr *trust) error {
	switch {
	case t.cosignersFile == "" && t.quorum != 0:
		return usageErrorf("--quorum needs --cosigners FILE")
	case t.cosignersFile == "":
		return nil
	case t.quorum < 0:
		return usageErrorf("--quorum must be positive")
	}
	b, err := readFileLimit(t.cosignersFile, 64*maxKeyBytes)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := merkle.NewVerifier(line)
		if err != nil {
			return usageErrorf("--cosigners %s line %d: %v", t.cosignersFile, i+1, err)
		}
		if id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()); !seen[id] {
			seen[id] = true
			tr.cosigners = append(tr.cosigners, v)
		}
	}
	if len(tr.cosigners) == 0 {
		return usageErrorf("--cosigners %s holds no key", t.cosignersFile)
	}
	tr.quorum = t.quorum
	if tr.quorum == 0 {
		tr.quorum = len(tr.cosigners)/2 + 1
	}
	if tr.quorum > len(tr.cosigners) {
		return usageErrorf("--quorum %d: only %d cosigning keys in %s", tr.quorum, len(tr.cosigners), t.cosignersFile)
	}
	return nil
}

// keyLabel names the key as "name+hash", as signature lines do.
func (t trust) keyLabel() string {
	return fmt.Sprintf("%s+%08x", t.verifier.Name(), t.verifier.KeyHash())
}

// origin is a parsed checkpoint origin "<log>/<tenant>/<YYYY-MM>". The log
// name may itself contain slashes; tenant ids and partitions cannot.
type origin struct {
	log, tenant, partition string
}

func (o origin) String() string { return o.log + "/" + o.tenant + "/" + o.partition }

func parseOrigin(s string) (origin, error) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return origin{}, fmt.Errorf("origin %q is not <log>/<tenant>/<YYYY-MM>", s)
	}
	j := strings.LastIndexByte(s[:i], '/')
	if j <= 0 {
		return origin{}, fmt.Errorf("origin %q is not <log>/<tenant>/<YYYY-MM>", s)
	}
	o := origin{log: s[:j], tenant: s[j+1 : i], partition: s[i+1:]}
	if err := validTenant(o.tenant); err != nil {
		return origin{}, fmt.Errorf("origin %q: %w", s, err)
	}
	if err := validPartition(o.partition); err != nil {
		return origin{}, fmt.Errorf("origin %q: %w", s, err)
	}
	return o, nil
}

// openNote verifies a signed checkpoint note and its origin's log name.
func (t trust) openNote(signed []byte) (merkle.Checkpoint, origin, error) {
	cp, err := merkle.OpenCheckpoint(signed, t.verifier)
	if err != nil {
		if errors.Is(err, merkle.ErrUnverified) {
			return merkle.Checkpoint{}, origin{}, fmt.Errorf("checkpoint is not signed by key %s: %w", t.keyLabel(), err)
		}
		return merkle.Checkpoint{}, origin{}, fmt.Errorf("checkpoint: %w", err)
	}
	o, err := parseOrigin(cp.Origin)
	if err != nil {
		return merkle.Checkpoint{}, origin{}, fmt.Errorf("checkpoint signed by %s: %w", t.keyLabel(), err)
	}
	if err := t.checkQuorum(signed, cp); err != nil {
		return merkle.Checkpoint{}, origin{}, err
	}
	if o.log != t.logName {
		return merkle.Checkpoint{}, origin{}, fmt.Errorf("checkpoint origin %q belongs to log %q, want log %q", cp.Origin, o.log, t.logName)
	}
	return cp, o, nil
}

// openCheckpoint opens a Checkpoint message. Its origin, tree_size and
// root_hash fields are unsigned conveniences; they must agree with the
// signed note, or someone edited them.
func (t trust) openCheckpoint(pb *trailv1.Checkpoint) (merkle.Checkpoint, origin, error) {
	if pb.GetSignedNote() == "" {
		return merkle.Checkpoint{}, origin{}, errors.New("no signed checkpoint note")
	}
	cp, o, err := t.openNote([]byte(pb.GetSignedNote()))
	if err != nil {
		return merkle.Checkpoint{}, origin{}, err
	}
	switch {
	case pb.GetOrigin() != "" && pb.GetOrigin() != cp.Origin:
		err = fmt.Errorf("checkpoint field origin %q differs from the signed origin %q", pb.GetOrigin(), cp.Origin)
	case pb.GetTreeSize() != 0 && pb.GetTreeSize() != cp.Size:
		err = fmt.Errorf("checkpoint field tree_size %d differs from the signed size %d", pb.GetTreeSize(), cp.Size)
	case len(pb.GetRootHash()) != 0 && !bytes.Equal(pb.GetRootHash(), cp.Root[:]):
		err = fmt.Errorf("checkpoint field root_hash %x differs from the signed root %s", pb.GetRootHash(), cp.Root)
	}
	return cp, o, err
}

// checkpointOK is the statement made about a verified checkpoint.
func (t trust) checkpointOK(cp merkle.Checkpoint) string {
	s := fmt.Sprintf("OK checkpoint %s size %d root %s signed by key %s", cp.Origin, cp.Size, cp.Root, t.keyLabel())
	if t.quorum > 0 {
		s += fmt.Sprintf(" and cosigned by at least %d of %d nodes", t.quorum, len(t.cosigners))
	}
	return s
}

// checkQuorum requires valid cosignatures by at least t.quorum of the
// nodes' keys. A signature line that names a listed key but does not
// verify is an error, not merely uncounted: someone forged or altered it.
func (t trust) checkQuorum(signed []byte, cp merkle.Checkpoint) error {
	if t.quorum == 0 {
		return nil
	}
	n, err := note.Open(signed, note.VerifierList(t.cosigners...))
	var none *note.UnverifiedNoteError
	switch {
	case errors.As(err, &none):
		return fmt.Errorf("checkpoint %s size %d carries no cosignature by the nodes listed, %d required: %w", cp.Origin, cp.Size, t.quorum, merkle.ErrUnverified)
	case err != nil:
		return fmt.Errorf("checkpoint %s size %d: node cosignature: %w: %w", cp.Origin, cp.Size, merkle.ErrUnverified, err)
	case len(n.Sigs) < t.quorum:
		return fmt.Errorf("checkpoint %s size %d is cosigned by %d of the %d nodes listed, %d required: %w", cp.Origin, cp.Size, len(n.Sigs), len(t.cosigners), t.quorum, merkle.ErrUnverified)
	}
	return nil
}

// readFileLimit reads a whole file ("-" for stdin is not accepted here),
// refusing files larger than limit so a wrong path cannot exhaust memory.
func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ioError(err)
	}
	defer f.Close()
	return readLimit(f, path, limit)
}
