package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/shred"
)

// chainCheck verifies a run of one tenant's entries in log order (a chain
// file): every leaf hash recomputed from the entry bytes, every
// prev_leaf_hash link (merkle.ChainVerifier), contiguous leaf indexes, the
// hand-off between partitions with the link leaf 0 records, and monotonic
// sequencer time. Memory is constant per partition the run crosses.
type chainCheck struct {
	tenant   string
	chain    *merkle.ChainVerifier // nil until the first entry with content
	runs     []*partitionRun
	lastTime time.Time
	count    uint64
	pruned   uint64
	// opened and erased count the sealed payloads the chain shows opened
	// (checked) and erased.
	opened, erased uint64
	notes          []string
	target         *chainTarget
}

// partitionRun is the part of the chain inside one partition.
type partitionRun struct {
	partition   string
	first, last uint64
	// tree rebuilds the partition's tree from its leaf hashes; nil unless
	// the run starts at leaf 0, since a root needs every leaf.
	tree *merkle.Appender
}

// chainTarget is a verified checkpoint whose root the chain must rebuild.
type chainTarget struct {
	cp     merkle.Checkpoint
	origin origin
	root   *merkle.Hash // the rebuilt root, once the run reaches cp.Size
}

// chainItem is one entry as the checker sees it.
type chainItem struct {
	partition string
	leaf      uint64
	hash      merkle.Hash
	entry     *trailv1.Entry // nil when the payload was pruned
}

// add checks the next entry of the chain.
func (c *chainCheck) add(se *trailv1.StoredEntry) error {
	it, err := c.item(se)
	if err == nil {
		err = c.place(it)
	}
	if err == nil {
		err = c.link(it)
	}
	if err != nil {
		return fmt.Errorf("%s leaf %d: %w", se.GetPartition(), se.GetLeafIndex(), err)
	}
	c.grow(it)
	return nil
}

// item recomputes the leaf hash and decodes the entry, checking the
// StoredEntry's unhashed fields against the hashed bytes.
func (c *chainCheck) item(se *trailv1.StoredEntry) (chainItem, error) {
	if err := c.sameTenant(se.GetTenantId()); err != nil {
		return chainItem{}, err
	}
	if err := validPartition(se.GetPartition()); err != nil {
		return chainItem{}, err
	}
	it := chainItem{partition: se.GetPartition(), leaf: se.GetLeafIndex()}
	if se.GetPruned() {
		if len(se.GetEntryBytes()) != 0 {
			return chainItem{}, fmt.Errorf("marked pruned but has entry_bytes")
		}
		h, err := toHash(se.GetLeafHash())
		if err != nil {
			return chainItem{}, fmt.Errorf("pruned entry's leaf_hash: %w", err)
		}
		it.hash = h
		return it, nil
	}
	if len(se.GetEntryBytes()) == 0 {
		return chainItem{}, fmt.Errorf("no entry_bytes, and not marked pruned")
	}
	it.hash = merkle.LeafHash(se.GetEntryBytes())
	if claimed := se.GetLeafHash(); len(claimed) != 0 && !bytes.Equal(claimed, it.hash[:]) {
		return chainItem{}, fmt.Errorf("entry_bytes hash to leaf %s but leaf_hash says %x: the entry was altered", it.hash, claimed)
	}
	en, err := decodeEntry(se.GetEntryBytes())
	if err != nil {
		return chainItem{}, err
	}
	// "entry" is the decoding of entry_bytes shown for convenience; it is
	// not hashed, so an edited copy would mislead a reader of the file. A
	// sealed payload the server opened shows its fields there, which its
	// opening key must reproduce from the hashed ciphertext.
	shown, err := c.expectedEntry(se, en)
	if err != nil {
		return chainItem{}, err
	}
	if se.GetEntry() != nil && !proto.Equal(se.GetEntry(), shown) {
		return chainItem{}, fmt.Errorf("the decoded \"entry\" field differs from entry_bytes: it was edited (only entry_bytes are hashed)")
	}
	if err := checkEntryPlace(en, se.GetTenantId(), it.partition, it.leaf); err != nil {
		return chainItem{}, err
	}
	it.entry = en
	return it, nil
}

// expectedEntry is what the "entry" field of se must be: the decoding en
// of its bytes, with a sealed payload's fields opened when se says the
// server opened it.
func (c *chainCheck) expectedEntry(se *trailv1.StoredEntry, en *trailv1.Entry) (*trailv1.Entry, error) {
	sealed := en.GetEvent().GetSealed() != nil
	switch se.GetSealed() {
	case trailv1.SealedState_SEALED_STATE_UNSPECIFIED:
		if sealed {
			return nil, fmt.Errorf("the entry's payload is sealed but the entry does not say what became of it")
		}
		return en, nil
	case trailv1.SealedState_SEALED_STATE_OPENED:
		if !sealed {
			return nil, fmt.Errorf("said to be opened, but its payload is not sealed")
		}
		fields, err := shred.Open(en.GetEvent(), se.GetOpeningKey())
		if err != nil {
			return nil, fmt.Errorf("its opening key does not open its sealed payload: %w", err)
		}
		c.opened++
		opened := proto.CloneOf(en)
		opened.Event.Changes, opened.Event.Attributes = fields.GetChanges(), fields.GetAttributes()
		return opened, nil
	default:
		if !sealed || len(se.GetOpeningKey()) != 0 {
			return nil, fmt.Errorf("said to be %s, but its payload is not sealed or a key comes with it", se.GetSealed())
		}
		if se.GetSealed() == trailv1.SealedState_SEALED_STATE_ERASED {
			c.erased++
		}
		return en, nil
	}
}

func (c *chainCheck) sameTenant(tenant string) error {
	if c.tenant == "" {
		if err := validTenant(tenant); err != nil {
			return err
		}
		c.tenant = tenant
		return nil
	}
	if tenant != c.tenant {
		return fmt.Errorf("entry of tenant %q in a chain of tenant %q", tenant, c.tenant)
	}
	return nil
}

// place checks the entry's position follows the previous one.
func (c *chainCheck) place(it chainItem) error {
	if it.entry != nil && it.leaf != 0 && it.entry.GetPrevPartition() != nil {
		return fmt.Errorf("records a prev_partition link, which only leaf 0 may")
	}
	if err := c.checkTime(it); err != nil {
		return err
	}
	if len(c.runs) == 0 {
		return c.start(it)
	}
	cur := c.runs[len(c.runs)-1]
	switch {
	case it.partition == cur.partition && it.leaf != cur.last+1:
		return fmt.Errorf("follows leaf %d of the same partition: entries are missing, repeated or out of order", cur.last)
	case it.partition == cur.partition:
		cur.last = it.leaf
		return nil
	case it.partition < cur.partition:
		return fmt.Errorf("partition %s comes after %s: partitions out of order", it.partition, cur.partition)
	case it.leaf != 0:
		return fmt.Errorf("the chain enters partition %s at leaf %d, not leaf 0: entries are missing", it.partition, it.leaf)
	}
	if err := c.checkHandOff(cur, it); err != nil {
		return err
	}
	c.runs = append(c.runs, newRun(it))
	return nil
}

func newRun(it chainItem) *partitionRun {
	r := &partitionRun{partition: it.partition, first: it.leaf, last: it.leaf}
	if it.leaf == 0 {
		r.tree, _ = merkle.NewAppender(0, nil) // cannot fail for size 0
	}
	return r
}

// checkTime enforces invariant 4: sequencer time is monotonic per tenant
// and selects the partition.
func (c *chainCheck) checkTime(it chainItem) error {
	if it.entry == nil {
		return nil
	}
	ts := it.entry.GetSequencerTime()
	if !ts.IsValid() {
		return fmt.Errorf("entry has no valid sequencer_time")
	}
	t := ts.AsTime().UTC()
	switch {
	case t.Format("2006-01") != it.partition:
		return fmt.Errorf("sequencer time %s is not in partition %s", t.Format(time.RFC3339Nano), it.partition)
	case t.Before(c.lastTime):
		return fmt.Errorf("sequencer time %s goes back before %s", t.Format(time.RFC3339Nano), c.lastTime.Format(time.RFC3339Nano))
	}
	c.lastTime = t
	return nil
}

// start anchors the chain at its first entry and says how.
func (c *chainCheck) start(it chainItem) error {
	c.runs = append(c.runs, newRun(it))
	switch {
	case it.entry == nil:
		c.note("the chain starts at a pruned entry (leaf %d of %s): its link to the entry before cannot be checked", it.leaf, it.partition)
	case it.leaf == 0 && it.entry.GetPrevPartition() == nil:
		// Without a partition link, leaf 0 must be the tenant's very first
		// entry, which records 32 zero bytes as its predecessor.
		if prev := it.entry.GetPrevLeafHash(); !bytes.Equal(prev, make([]byte, merkle.HashSize)) {
			return fmt.Errorf("leaf 0 has no prev_partition, so it must be the tenant's first entry, but it records previous leaf hash %x", prev)
		}
		c.note("the chain starts at the tenant's first entry (leaf 0 of %s, previous leaf hash zero)", it.partition)
	case it.leaf == 0:
		l := it.entry.GetPrevPartition()
		c.note("the chain starts at leaf 0 of %s, which links to partition %s (final size %d, root %x): verify that partition's checkpoint to extend trust further back",
			it.partition, l.GetPartition(), l.GetSize(), l.GetRoot())
	default:
		c.note("the chain starts at leaf %d of %s: its link to the entry before (previous leaf hash %x) is outside the file and was not checked",
			it.leaf, it.partition, it.entry.GetPrevLeafHash())
	}
	return nil
}

// checkHandOff checks the link leaf 0 of a partition records to the
// partition before it (invariant 3): its name, final size and, when the
// chain holds all of that partition, its root.
func (c *chainCheck) checkHandOff(prev *partitionRun, it chainItem) error {
	if it.entry == nil {
		c.note("leaf 0 of %s is pruned: its link to partition %s cannot be checked", it.partition, prev.partition)
		return nil
	}
	l := it.entry.GetPrevPartition()
	switch {
	case l == nil:
		return fmt.Errorf("leaf 0 has no prev_partition link to partition %s", prev.partition)
	case l.GetPartition() != prev.partition:
		return fmt.Errorf("leaf 0 links to partition %q, but the chain's previous partition is %s", l.GetPartition(), prev.partition)
	case l.GetSize() != prev.last+1:
		return fmt.Errorf("leaf 0 records a final size of %d for %s, but the chain's last entry there is leaf %d: entries are missing",
			l.GetSize(), prev.partition, prev.last)
	case prev.tree == nil:
		c.note("the root %x that leaf 0 of %s records for %s was not checked: the chain does not hold all of %s",
			l.GetRoot(), it.partition, prev.partition, prev.partition)
		return nil
	}
	if root := prev.tree.Root(); !bytes.Equal(l.GetRoot(), root[:]) {
		return fmt.Errorf("leaf 0 records root %x for %s, but the chain's entries of %s hash to root %s", l.GetRoot(), prev.partition, prev.partition, root)
	}
	return nil
}

// link checks prev_leaf_hash. A pruned entry's content, and so the link it
// recorded, is gone; the tree still commits to its leaf hash, which the
// next entry must record, so the chain resumes from it.
func (c *chainCheck) link(it chainItem) error {
	if it.entry == nil {
		c.pruned++
		c.chain = merkle.NewChainVerifier(it.hash, c.count+1)
		return nil
	}
	prev, err := toHash(it.entry.GetPrevLeafHash())
	if err != nil {
		return fmt.Errorf("prev_leaf_hash: %w", err)
	}
	if c.chain == nil {
		c.chain = merkle.NewChainVerifier(prev, c.count)
	}
	if err := c.chain.Next(it.hash, prev); err != nil {
		return fmt.Errorf("the chain is broken: %w", err)
	}
	return nil
}

// grow records an accepted entry.
func (c *chainCheck) grow(it chainItem) {
	c.count++
	r := c.runs[len(c.runs)-1]
	if r.tree == nil {
		return
	}
	r.tree.Append(it.hash, nil)
	if t := c.target; t != nil && t.root == nil && t.origin.partition == r.partition && r.tree.Size() == t.cp.Size {
		root := r.tree.Root()
		t.root = &root
	}
}

func (c *chainCheck) note(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

// finish checks the whole and returns the statements verified.
func (c *chainCheck) finish() ([]string, error) {
	if c.count == 0 {
		return nil, fmt.Errorf("the chain has no entries")
	}
	ok := []string{c.summary()}
	if t := c.target; t != nil {
		switch {
		case t.origin.tenant != c.tenant:
			return nil, fmt.Errorf("checkpoint %s is for tenant %q, the chain for tenant %q", t.cp.Origin, t.origin.tenant, c.tenant)
		case t.root == nil:
			return nil, fmt.Errorf("the chain does not hold leaves 0..%d of %s, so checkpoint %s cannot be checked against it",
				t.cp.Size-1, t.origin.partition, t.cp.Origin)
		case *t.root != t.cp.Root:
			return nil, fmt.Errorf("the chain's leaves 0..%d of %s hash to root %s, but the signed checkpoint says %s",
				t.cp.Size-1, t.origin.partition, *t.root, t.cp.Root)
		}
		ok = append(ok, fmt.Sprintf("OK root of %s at size %d rebuilt from the chain's leaf hashes matches the signed checkpoint", t.cp.Origin, t.cp.Size))
	}
	if c.opened+c.erased > 0 {
		ok = append(ok, fmt.Sprintf("OK sealed payloads: %d opened with their event keys (the shown fields checked against the hashed ciphertext), %d erased", c.opened, c.erased))
	}
	if c.pruned > 0 {
		c.note("%d entries are pruned: their content, and their link to the entry before, cannot be checked; their leaf hashes are covered by the next entry's link and by any root check", c.pruned)
	}
	return ok, nil
}

func (c *chainCheck) summary() string {
	parts := make([]string, len(c.runs))
	for i, r := range c.runs {
		parts[i] = fmt.Sprintf("leaves %d..%d of %s/%s", r.first, r.last, c.tenant, r.partition)
	}
	return fmt.Sprintf("OK chain of %d entries, %s", c.count, strings.Join(parts, ", "))
}
