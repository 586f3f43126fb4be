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

// Snapshot is a consistent copy of the engine's on-disk state (a Pebble
// checkpoint plus hard links to the segment files), taken at Index. It stays
// valid while the engine keeps applying; Release removes it.
type Snapshot struct {
	Index uint64
	dir   string
}

func snapshotRoot(dir string) string { return filepath.Join(dir, "snapshots") }

// CaptureSnapshot takes a Snapshot. It blocks mutations only while the
// checkpoint's hard links are made, so it is fast.
func (e *Engine) CaptureSnapshot(ctx context.Context) (*Snapshot, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := os.MkdirAll(snapshotRoot(e.opts.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("engine: snapshot: %w", err)
	}
	dir, err := os.MkdirTemp(snapshotRoot(e.opts.Dir), "snap-")
	if err != nil {
		return nil, fmt.Errorf("engine: snapshot: %w", err)
	}
	s := &Snapshot{Index: e.applied.Load(), dir: dir}
	if err := e.db.Checkpoint(filepath.Join(dir, "db"), pebble.WithFlushedWAL()); err != nil {
		s.Release()
		return nil, fmt.Errorf("engine: snapshot: pebble checkpoint: %w", err)
	}
	if err := linkTree(segmentRoot(e.opts.Dir), filepath.Join(dir, "segments")); err != nil {
		s.Release()
		return nil, fmt.Errorf("engine: snapshot: segments: %w", err)
	}
	return s, nil
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
		_, err = io.Copy(tw, f)
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
		if !filepath.IsLocal(name) || !(name == "db" || name == "segments" ||
			strings.HasPrefix(name, "db"+string(filepath.Separator)) || strings.HasPrefix(name, "segments"+string(filepath.Separator))) {
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
