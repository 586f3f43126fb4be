package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// Snapshot is a consistent copy of the engine's on-disk state at Index: a
// Pebble checkpoint, and hard links to the segment files, the open
// partitions' files and the hash log. Open partitions' files and the hash
// log keep growing after the snapshot; their bytes below the lengths
// recorded here never change, and only those are streamed. The snapshot
// stays valid while the engine keeps applying; Release removes it.
type Snapshot struct {
	Index uint64
	dir   string
	// limits caps the streamed length of files that are appended to.
	limits map[string]int64
}

func snapshotRoot(dir string) string { return filepath.Join(dir, "snapshots") }

// CaptureSnapshot takes a Snapshot after a checkpoint, so that the
// snapshot's Pebble state records the applied index it was taken at. It
// blocks mutations only while the checkpoint runs and the links are made.
func (e *Engine) CaptureSnapshot(ctx context.Context) (*Snapshot, error) {
	if err := e.checkWritable(); err != nil {
		return nil, err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := e.checkpointNow(); err != nil {
		return nil, fmt.Errorf("engine: snapshot: %w", err)
	}
	if err := os.MkdirAll(snapshotRoot(e.opts.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("engine: snapshot: %w", err)
	}
	dir, err := os.MkdirTemp(snapshotRoot(e.opts.Dir), "snap-")
	if err != nil {
		return nil, fmt.Errorf("engine: snapshot: %w", err)
	}
	s := &Snapshot{Index: e.applied.Load(), dir: dir, limits: make(map[string]int64)}
	if err := e.db.Checkpoint(filepath.Join(dir, "db"), pebble.WithFlushedWAL()); err != nil {
		s.Release()
		return nil, fmt.Errorf("engine: snapshot: pebble checkpoint: %w", err)
	}
	if err := linkTree(segmentRoot(e.opts.Dir), filepath.Join(dir, "segments")); err != nil {
		s.Release()
		return nil, fmt.Errorf("engine: snapshot: segments: %w", err)
	}
	if err := e.linkAppendOnly(s); err != nil {
		s.Release()
		return nil, fmt.Errorf("engine: snapshot: %w", err)
	}
	return s, nil
}

// linkAppendOnly links the open partitions' files and the hash log into
// the snapshot with their current lengths.
func (e *Engine) linkAppendOnly(s *Snapshot) error {
	link := func(src, rel string, n int64) error {
		dst := filepath.Join(s.dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Link(src, dst); err != nil {
			return err
		}
		s.limits[filepath.ToSlash(rel)] = n
		return nil
	}
	for p, op := range e.open {
		rel, err := filepath.Rel(e.opts.Dir, op.files.dir)
		if err != nil {
			return fmt.Errorf("partition %s: %w", p, err)
		}
		for _, f := range []struct {
			name string
			n    int64
		}{{entriesFileName, op.at.entries}, {offsetsFileName, op.at.offsets}, {hashesFileName, op.at.hashes}} {
			if err := link(filepath.Join(op.files.dir, f.name), filepath.Join(rel, f.name), f.n); err != nil {
				return fmt.Errorf("partition %s: %w", p, err)
			}
		}
	}
	return link(filepath.Join(e.opts.Dir, hashLogName), hashLogName, e.hashLog.len)
}

// linkTree hard-links every regular file under src into dst. Segment files
// are immutable (a rewrite renames a new file over the old name), so a link
// keeps the snapshot's version.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() || strings.Contains(d.Name(), ".tmp-") {
			return nil
		}
		return os.Link(path, target)
	})
}

// WriteTo streams the snapshot as a tar archive.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	tw := tar.NewWriter(cw)
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == s.dir {
			return err
		}
		rel, err := filepath.Rel(s.dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		limit, limited := s.limits[hdr.Name]
		if limited {
			if limit > hdr.Size {
				return fmt.Errorf("%s holds %d bytes, the snapshot recorded %d", rel, hdr.Size, limit)
			}
			hdr.Size = limit
		}
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyN(tw, f, hdr.Size)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return cw.n, fmt.Errorf("engine: write snapshot: %w", err)
	}
	return cw.n, nil
}

// Release deletes the snapshot's files.
func (s *Snapshot) Release() error { return os.RemoveAll(s.dir) }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ErrBadSnapshot is returned by Restore for an archive that is not an
// engine snapshot.
var ErrBadSnapshot = errors.New("engine: malformed snapshot archive")

// Restore unpacks a snapshot written by Snapshot.WriteTo into dir, which
// must not exist or be empty. Open(dir) then yields the snapshot's state.
// On failure dir is removed, so nothing half-restored is ever opened.
func Restore(ctx context.Context, r io.Reader, dir string) (err error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("engine: restore into %s: directory not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("engine: restore: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	tr := tar.NewReader(r)
	sawDB := false
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("engine: restore: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("engine: restore: %w: %v", ErrBadSnapshot, err)
		}
		name := filepath.FromSlash(strings.TrimSuffix(hdr.Name, "/"))
		if !filepath.IsLocal(name) || !snapshotPath(name) {
			return fmt.Errorf("engine: restore: %w: unexpected path %q", ErrBadSnapshot, hdr.Name)
		}
		sawDB = sawDB || name == "db" || strings.HasPrefix(name, "db"+string(filepath.Separator))
		if err := restoreEntry(tr, hdr, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("engine: restore %s: %w", hdr.Name, err)
		}
	}
	if !sawDB {
		return fmt.Errorf("engine: restore: %w: no database", ErrBadSnapshot)
	}
	return syncDir(dir)
}

// snapshotPath reports whether name is a path a snapshot may hold.
func snapshotPath(name string) bool {
	if name == hashLogName {
		return true
	}
	for _, top := range []string{"db", "segments", openDirName} {
		if name == top || strings.HasPrefix(name, top+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func restoreEntry(tr *tar.Reader, hdr *tar.Header, path string) error {
	switch hdr.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(path, 0o755)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	default:
		return fmt.Errorf("%w: entry type %c", ErrBadSnapshot, hdr.Typeflag)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
