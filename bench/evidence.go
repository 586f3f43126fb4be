package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/trailaudit/trail/merkle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// evidence is what an auditor holds after fetching a run of a partition:
// the entries' bytes as served, the leaf hashes the server claimed, and a
// signed checkpoint's root over exactly those entries. Verifying it needs
// no network.
type evidence struct {
	entries [][]byte
	served  []merkle.Hash
	root    merkle.Hash
	// proofs[i] proves leaf i in the tree of len(entries) leaves; built
	// offline for the per-entry mode, see buildProofs.
	proofs [][]merkle.Hash
	// sample are proofs fetched from the server, verified on arrival.
	sample []sampledProof
	// bundlePath is the tenant's export bundle, verified with key; empty
	// without a key to trust.
	bundlePath  string
	bundleBytes int64
	key         note.Verifier
}

// fetchRun reads leaves [0, size) of a partition with Tail: one stream,
// entries as stored, no per-entry round trip.
func fetchRun(ctx context.Context, rc trailv1.ReadServiceClient, tenant, partition string, size uint64) (*evidence, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the tail, which would otherwise wait for new entries
	stream, err := rc.Tail(ctx, &trailv1.TailRequest{TenantId: tenant, Partition: partition, FromLeaf: 0})
	if err != nil {
		return nil, fmt.Errorf("tail %s/%s: %w", tenant, partition, err)
	}
	ev := &evidence{entries: make([][]byte, 0, size), served: make([]merkle.Hash, 0, size)}
	for uint64(len(ev.entries)) < size {
		resp, err := stream.Recv()
		if err == io.EOF {
			err = errors.New("stream ended early")
		}
		if err != nil {
			return nil, fmt.Errorf("tail %s/%s at leaf %d: %w", tenant, partition, len(ev.entries), err)
		}
		se := resp.GetEntry()
		if se.GetPartition() != partition || se.GetLeafIndex() != uint64(len(ev.entries)) {
			return nil, fmt.Errorf("tail: got %s leaf %d, want %s leaf %d", se.GetPartition(), se.GetLeafIndex(), partition, len(ev.entries))
		}
		if se.GetPruned() {
			return nil, fmt.Errorf("tail: leaf %d is pruned; pick a partition without pruned entries", se.GetLeafIndex())
		}
		var h merkle.Hash
		if copy(h[:], se.GetLeafHash()) != merkle.HashSize {
			return nil, fmt.Errorf("tail: leaf %d: leaf hash of %d bytes", se.GetLeafIndex(), len(se.GetLeafHash()))
		}
		ev.entries = append(ev.entries, se.GetEntryBytes())
		ev.served = append(ev.served, h)
	}
	return ev, nil
}

// buildProofs computes every leaf's inclusion proof from the served leaf
// hashes, the way the server does (merkle.InclusionProof), so that the
// per-entry mode verifies one proof per entry without a million round
// trips. A sample of proofs fetched from the server is compared with these.
func (ev *evidence) buildProofs(ctx context.Context) error {
	tree := merkle.NewMemoryNodes(ev.served)
	size := uint64(len(ev.served))
	ev.proofs = make([][]merkle.Hash, size)
	for i := range ev.proofs {
		p, err := merkle.InclusionProof(ctx, uint64(i), size, tree)
		if err != nil {
			return fmt.Errorf("build proof of leaf %d: %w", i, err)
		}
		ev.proofs[i] = p
	}
	return nil
}

// entryLinks reads leaf_index (field 4) and prev_leaf_hash (field 5) of an
// encoded trail.v1.Entry and skips everything else: the chain check needs
// nothing more, and the bytes are hashed as they are anyway.
func entryLinks(b []byte) (leaf uint64, prev merkle.Hash, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, prev, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 4 && typ == protowire.VarintType:
			leaf, n = protowire.ConsumeVarint(b)
		case num == 5 && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if n >= 0 && copy(prev[:], v) != merkle.HashSize {
				return 0, prev, fmt.Errorf("prev_leaf_hash of %d bytes", len(v))
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return 0, prev, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return leaf, prev, nil
}

// entryLinksDecoded is entryLinks by a full decode, as a verifier that
// also checks the event's contents does.
func entryLinksDecoded(b []byte) (uint64, merkle.Hash, error) {
	var e trailv1.Entry
	var prev merkle.Hash
	if err := proto.Unmarshal(b, &e); err != nil {
		return 0, prev, err
	}
	if copy(prev[:], e.GetPrevLeafHash()) != merkle.HashSize {
		return 0, prev, fmt.Errorf("prev_leaf_hash of %d bytes", len(e.GetPrevLeafHash()))
	}
	return e.GetLeafIndex(), prev, nil
}

// verifyMode is what a pass checks beyond leaf hashes and the chain.
type verifyMode struct {
	name   string
	proofs bool // one inclusion proof per entry, else rebuild the root
	decode bool // decode each entry fully, else read only its links
}

// verifyRange checks entries [a, b): each leaf hash recomputed from the
// bytes and equal to the served one, each entry's leaf_index, and each
// prev_leaf_hash equal to the previous entry's leaf hash (entry 0's is
// taken as given: it links to the previous partition). With proofs it also
// verifies each entry's inclusion proof. It stores the leaf hashes in out.
func (ev *evidence) verifyRange(a, b int, m verifyMode, out []merkle.Hash) error {
	links := entryLinks
	if m.decode {
		links = entryLinksDecoded
	}
	var chain *merkle.ChainVerifier
	if a > 0 {
		// Hash the entry before the range again rather than wait for the
		// worker that owns it.
		chain = merkle.NewChainVerifier(merkle.LeafHash(ev.entries[a-1]), uint64(a))
	}
	size := uint64(len(ev.entries))
	for i := a; i < b; i++ {
		h := merkle.LeafHash(ev.entries[i])
		if h != ev.served[i] {
			return fmt.Errorf("leaf %d: served leaf hash is not the hash of the served bytes", i)
		}
		leaf, prev, err := links(ev.entries[i])
		if err != nil {
			return fmt.Errorf("leaf %d: %w", i, err)
		}
		if leaf != uint64(i) {
			return fmt.Errorf("leaf %d: entry records leaf_index %d", i, leaf)
		}
		if chain == nil {
			chain = merkle.NewChainVerifier(prev, uint64(i))
		}
		if err := chain.Next(h, prev); err != nil {
			return err
		}
		if m.proofs {
			if err := merkle.VerifyInclusion(uint64(i), size, h, ev.proofs[i], ev.root); err != nil {
				return err
			}
		}
		out[i] = h
	}
	return nil
}

// verifyPass verifies the whole run once with the given number of workers.
// Without per-entry proofs the root is rebuilt from the leaves: the run is
// cut into aligned power-of-two chunks whose subtree roots the workers
// compute, and the last partial chunk is appended on top of them.
func (ev *evidence) verifyPass(m verifyMode, workers int, leaves []merkle.Hash) error {
	n := len(ev.entries)
	if n == 0 {
		return errors.New("no entries")
	}
	chunk := n
	if workers > 1 {
		// About eight chunks per worker, so that they finish together.
		chunk = 1 << max(0, bits.Len(uint(n/(8*workers)))-1)
	}
	full := n / chunk
	if workers == 1 {
		full = 0 // one sequential range; its root comes from the appender below
	}
	roots := make([]merkle.Hash, full)
	jobs := make(chan int, full+1)
	for j := range full + 1 {
		jobs <- j
	}
	close(jobs)
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				a, b := j*chunk, min((j+1)*chunk, n)
				if j == full {
					b = n // the tail (all of it with one worker)
				}
				if a >= b {
					continue
				}
				err := ev.verifyRange(a, b, m, leaves)
				if err == nil && !m.proofs && j < full {
					roots[j] = subtreeRoot(leaves[a:b])
				}
				if err != nil {
					errMu.Lock()
					first = errors.Join(first, err)
					errMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if first != nil || m.proofs {
		return first
	}
	return ev.checkRoot(roots, chunk, full, leaves)
}

// subtreeRoot is the root of a perfect subtree of leaf hashes.
func subtreeRoot(leaves []merkle.Hash) merkle.Hash {
	a, _ := merkle.NewAppender(0, nil) // cannot fail for size 0
	for _, h := range leaves {
		a.Append(h, nil)
	}
	return a.Root()
}

// checkRoot combines the chunk roots and the tail into the tree's root and
// compares it with the checkpoint's. The chunk roots are perfect subtrees
// of equal height, so an appender over them yields the right edge of the
// whole tree at full*chunk leaves.
func (ev *evidence) checkRoot(roots []merkle.Hash, chunk, full int, leaves []merkle.Hash) error {
	top, _ := merkle.NewAppender(0, nil)
	for _, r := range roots {
		top.Append(r, nil)
	}
	a, err := merkle.NewAppender(uint64(full*chunk), top.RightEdge())
	if err != nil {
		return err
	}
	for _, h := range leaves[full*chunk:] {
		a.Append(h, nil)
	}
	if got := a.Root(); got != ev.root {
		return fmt.Errorf("rebuilt root %s of %d leaves differs from the checkpoint's %s: %w", got, len(leaves), ev.root, merkle.ErrRootMismatch)
	}
	return nil
}
