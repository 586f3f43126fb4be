package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"

	"github.com/trailaudit/trail/merkle"
)

// An open partition lives in three append-only files in its own directory,
// open/<tenant>/<YYYY-MM>/:
//
//	entries  the entries' bytes, back to back, exactly as hashed
//	offsets  for each leaf, the big-endian uint64 offset in entries where it ends
//	hashes   every stored tree node, 32 bytes each, in the order an append
//	         completes them (see nodePosition)
//
// Nothing in them is ever rewritten: a reader that knows the partition's
// size reads a stable prefix, while the writer appends past it. Durability
// comes from checkpoints (checkpoint.go): the files are fsynced before the
// catalog record naming their size is committed, and Open truncates
// whatever was written past that size, which Raft replays.
const (
	openDirName     = "open"
	entriesFileName = "entries"
	offsetsFileName = "offsets"
	hashesFileName  = "hashes"
	offsetSize      = 8
)

// nodePosition is the index of node id in the hashes file: appending leaf
// j writes the leaf, then every parent it completes, bottom-up. Before leaf
// j come j leaves and, for i < j, one parent per trailing one bit of i, so
// 2j - popcount(j) nodes; a node at level l is written l places after the
// leaf that completes it, the last leaf under it.
func nodePosition(id merkle.NodeID) uint64 {
	j := (id.Index+1)<<id.Level - 1
	return 2*j - uint64(bits.OnesCount64(j)) + uint64(id.Level)
}

// storedNodes is the number of nodes a tree of size leaves has stored.
func storedNodes(size uint64) uint64 { return 2*size - uint64(bits.OnesCount64(size)) }

func openRoot(dir string) string { return filepath.Join(dir, openDirName) }

// partitionDir is where p's files live. Tenant ids are checked against a
// grammar that excludes separators and dot names, and the result is checked
// again here, so that no tenant id can name a directory outside open/.
func partitionDir(dir string, p Partition) (string, error) {
	return tenantPath(openRoot(dir), p.Tenant, p.Month.String())
}

// tenantPath joins root, tenant and name, refusing anything that would not
// stay two levels inside root.
func tenantPath(root, tenant, name string) (string, error) {
	if err := ValidateTenantID(tenant); err != nil {
		return "", fmt.Errorf("engine: path for tenant %q: %w", tenant, err)
	}
	rel := filepath.Join(tenant, name)
	if !filepath.IsLocal(rel) || filepath.Dir(rel) != tenant || filepath.Base(rel) != name {
		return "", fmt.Errorf("engine: path for tenant %q: %q leaves its directory: %w", tenant, name, ErrInvalidEvent)
	}
	return filepath.Join(root, rel), nil
}

// partFiles are the open files of one open partition. The engine holds one
// reference while the partition is open; each reader view holds another,
// so a seal can remove the files while a read finishes on them.
type partFiles struct {
	dir                      string
	entries, offsets, hashes *os.File
	refs                     atomic.Int32
}

// openPartFiles opens (creating when create is set) p's files.
func openPartFiles(dir string, create bool) (*partFiles, error) {
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	pf := &partFiles{dir: dir}
	for _, f := range []struct {
		name string
		dst  **os.File
	}{{entriesFileName, &pf.entries}, {offsetsFileName, &pf.offsets}, {hashesFileName, &pf.hashes}} {
		file, err := os.OpenFile(filepath.Join(dir, f.name), flags, 0o644)
		if err != nil {
			pf.close()
			return nil, err
		}
		*f.dst = file
	}
	pf.refs.Store(1)
	return pf, nil
}

func (pf *partFiles) acquire() *partFiles {
	pf.refs.Add(1)
	return pf
}

func (pf *partFiles) release() {
	if pf.refs.Add(-1) == 0 {
		pf.close()
	}
}

func (pf *partFiles) close() error {
	var errs []error
	for _, f := range []*os.File{pf.entries, pf.offsets, pf.hashes} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// sync makes everything written to the files durable.
func (pf *partFiles) sync() error {
	for _, f := range []*os.File{pf.entries, pf.offsets, pf.hashes} {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", f.Name(), err)
		}
	}
	return nil
}

// lengths are the byte lengths of the three files at a tree size.
type lengths struct {
	entries, offsets, hashes int64
}

func lengthsAt(size uint64, entriesLen int64) lengths {
	return lengths{entries: entriesLen, offsets: int64(size) * offsetSize, hashes: int64(storedNodes(size)) * merkle.HashSize}
}

// entriesEnd reads where leaf size-1 ends in the entries file, which is the
// entries file's length at that size.
func (pf *partFiles) entriesEnd(size uint64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	var b [offsetSize]byte
	if _, err := pf.offsets.ReadAt(b[:], int64(size-1)*offsetSize); err != nil {
		return 0, fmt.Errorf("offset of leaf %d: %w", size-1, err)
	}
	return int64(binary.BigEndian.Uint64(b[:])), nil
}

// truncate cuts the files back to a tree of size leaves, dropping what was
// written after the last checkpoint. Files shorter than that are corrupt:
// the checkpoint fsynced them before it recorded size.
func (pf *partFiles) truncate(size uint64) (lengths, error) {
	end, err := pf.entriesEnd(size)
	if err != nil {
		return lengths{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	want := lengthsAt(size, end)
	for _, f := range []struct {
		file *os.File
		n    int64
	}{{pf.entries, want.entries}, {pf.offsets, want.offsets}, {pf.hashes, want.hashes}} {
		st, err := f.file.Stat()
		if err != nil {
			return lengths{}, err
		}
		if st.Size() < f.n {
			return lengths{}, fmt.Errorf("%s holds %d bytes, size %d needs %d: %w", f.file.Name(), st.Size(), size, f.n, ErrCorrupt)
		}
		if st.Size() > f.n {
			if err := f.file.Truncate(f.n); err != nil {
				return lengths{}, err
			}
		}
	}
	return want, nil
}

// write appends a batch: its entries, their end offsets and the nodes
// their appends completed, each at the position the files had before.
// Writing at explicit offsets makes a retry after a failed write overwrite
// rather than duplicate.
func (pf *partFiles) write(at lengths, entries, offsets, hashes []byte) error {
	for _, w := range []struct {
		file *os.File
		b    []byte
		off  int64
	}{{pf.entries, entries, at.entries}, {pf.offsets, offsets, at.offsets}, {pf.hashes, hashes, at.hashes}} {
		if len(w.b) == 0 {
			continue
		}
		if _, err := w.file.WriteAt(w.b, w.off); err != nil {
			return fmt.Errorf("write %s: %w", w.file.Name(), err)
		}
	}
	return nil
}

// entry reads the bytes of leaf, which must be below the size the caller
// knows is written.
func (pf *partFiles) entry(leaf uint64) ([]byte, error) {
	var b [2 * offsetSize]byte
	var start, end uint64
	if leaf == 0 {
		if _, err := pf.offsets.ReadAt(b[:offsetSize], 0); err != nil {
			return nil, fmt.Errorf("offset of leaf 0: %w", err)
		}
		end = binary.BigEndian.Uint64(b[:])
	} else {
		if _, err := pf.offsets.ReadAt(b[:], int64(leaf-1)*offsetSize); err != nil {
			return nil, fmt.Errorf("offsets of leaf %d: %w", leaf, err)
		}
		start, end = binary.BigEndian.Uint64(b[:]), binary.BigEndian.Uint64(b[offsetSize:])
	}
	if end < start || end-start > 1<<30 {
		return nil, fmt.Errorf("leaf %d spans [%d, %d): %w", leaf, start, end, ErrCorrupt)
	}
	data := make([]byte, end-start)
	if _, err := pf.entries.ReadAt(data, int64(start)); err != nil {
		return nil, fmt.Errorf("entry of leaf %d: %w", leaf, err)
	}
	return data, nil
}

// node reads a stored node.
func (pf *partFiles) node(id merkle.NodeID) (merkle.Hash, error) {
	var h merkle.Hash
	if _, err := pf.hashes.ReadAt(h[:], int64(nodePosition(id))*merkle.HashSize); err != nil {
		if errors.Is(err, io.EOF) {
			return h, fmt.Errorf("node %s beyond the hashes file: %w", id, ErrCorrupt)
		}
		return h, fmt.Errorf("node %s: %w", id, err)
	}
	return h, nil
}

// removePartitionDir deletes an open partition's directory and, when it is
// left empty, its tenant's directory.
func removePartitionDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	// Another month of the tenant may still be open: then the tenant's
	// directory stays.
	if err := os.Remove(parent); err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(parent))
}
