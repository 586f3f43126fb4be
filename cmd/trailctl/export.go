package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"

	"github.com/trailaudit/trail/bundle"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// "trailctl export" downloads an attested export bundle to a file, and
// "trailctl verify --bundle" checks one offline (package bundle holds the
// format and the verifier).

// exportFlags configure "trailctl export".
type exportFlags struct {
	req    trailv1.ExportRequest
	filter filterFlags
	out    string
	trust  trustFlags
}

func (f *exportFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.req.TenantId, "tenant", "", "the tenant to export (required)")
	f.filter.register(fs, "only entries")
	fs.Uint64Var(&f.req.MinIndex, "min-index", 0, "wait until the node has applied this Raft index")
	fs.StringVar(&f.out, "o", "", "write the bundle to `FILE` (- for stdout; default: the server's file name, in the current directory)")
	fs.StringVar(&f.out, "out", "", "same as -o")
	f.trust.register(fs)
}

// request validates the flags and completes the request.
func (f *exportFlags) request() (*trailv1.ExportRequest, error) {
	req := &f.req
	if err := validTenant(req.GetTenantId()); err != nil {
		return nil, usageErrorf("--tenant: %v", err)
	}
	var err error
	if req.Filter, err = f.filter.filter(); err != nil {
		return nil, err
	}
	return req, nil
}

func cmdExport(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var f exportFlags
	fs := newFlagSet("export")
	n.conn.register(fs)
	f.register(fs)
	if _, err := parseCommand(e, "export", fs, args, 0, 0); err != nil {
		return err
	}
	req, err := f.request()
	if err != nil {
		return err
	}
	var t *trust
	if f.trust.vkeyFile != "" && f.out == "-" {
		return usageErrorf("--vkey verifies the downloaded file: it does not go with -o -")
	}
	if f.trust.vkeyFile != "" {
		tr, err := f.trust.load()
		if err != nil {
			return err
		}
		t = &tr
	}
	conn, err := n.connect(e)
	if err != nil {
		return err
	}
	defer conn.Close()
	// No deadline: an export streams for as long as the log is large. The
	// server's flow control, not a timer, paces it.
	stream, err := trailv1.NewComplianceServiceClient(conn).Export(ctx, req)
	if err != nil {
		return wrapRPC("Export", err)
	}
	path, size, err := download(e, rpcChunks{stream, "Export"}, f.out)
	if err != nil {
		return err
	}
	if path != "-" {
		fmt.Fprintf(e.stderr, "wrote %d bytes to %s\n", size, path)
	}
	if t == nil {
		if path != "-" {
			fmt.Fprintf(e.stderr, "verify it with: trailctl verify --vkey LOG.vkey --bundle %s\n", path)
		}
		return nil
	}
	res, err := verifyBundleFile(ctx, e, *t, path, "")
	return reportVerify(e, false, res, err)
}

// chunkStream is the client side of a DownloadChunk stream whose Recv
// returns io.EOF at the end and otherwise errors ready to report.
type chunkStream interface {
	Recv() (*trailv1.DownloadChunk, error)
}

// rpcChunks names the RPC in the errors of a plain gRPC stream.
type rpcChunks struct {
	stream grpc.ServerStreamingClient[trailv1.DownloadChunk]
	method string
}

func (r rpcChunks) Recv() (*trailv1.DownloadChunk, error) {
	c, err := r.stream.Recv()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, wrapRPC(r.method, err)
	}
	return c, err
}

// download writes the stream to out (the server's file name when empty,
// stdout for "-"). A file is written under a temporary name and renamed
// when complete, so an interrupted download never looks finished.
func download(e *env, stream chunkStream, out string) (path string, size int64, err error) {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return "", 0, errors.New("the server sent no document")
	}
	if err != nil {
		return "", 0, err
	}
	if out == "-" {
		size, err = copyChunks(e.stdout, first, stream)
		return out, size, err
	}
	if out == "" {
		if out = filepath.Base(first.GetFilename()); out == "." || out == "/" || strings.HasPrefix(out, ".") {
			return "", 0, fmt.Errorf("the server suggested the file name %q: give -o FILE", first.GetFilename())
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".partial-*")
	if err != nil {
		return "", 0, ioError(err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	size, err = copyChunks(tmp, first, stream)
	if err == nil {
		err = ioError(tmp.Sync())
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = ioError(cerr)
	}
	if err != nil {
		return "", size, err
	}
	return out, size, ioError(os.Rename(tmp.Name(), out))
}

// copyChunks writes the first chunk and the rest of the stream to w.
func copyChunks(w io.Writer, first *trailv1.DownloadChunk, stream chunkStream) (int64, error) {
	var size int64
	for c := first; ; {
		n, err := w.Write(c.GetData())
		size += int64(n)
		if err != nil {
			return size, ioError(err)
		}
		if c, err = stream.Recv(); errors.Is(err, io.EOF) {
			return size, nil
		} else if err != nil {
			return size, err
		}
	}
}

// verifyBundle is "trailctl verify --bundle": the bundle is read once, as
// a stream, so its size does not matter.
func (f *verifyFlags) verifyBundle(e *env, t trust) (verifyResult, error) {
	if f.partition != "" {
		return verifyResult{}, usageErrorf("--partition does not apply to --bundle")
	}
	return verifyBundleFile(context.Background(), e, t, f.bundle, f.tenant)
}

func verifyBundleFile(ctx context.Context, e *env, t trust, path, tenant string) (verifyResult, error) {
	in := e.stdin
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return verifyResult{}, ioError(err)
		}
		defer file.Close()
		in = file
	}
	v := bundle.NewKeyVerifier(t.verifier)
	v.LogName = t.logName
	r, err := v.Verify(ctx, in)
	if errors.Is(err, bundle.ErrRead) {
		return verifyResult{}, ioError(fmt.Errorf("%s: %w", path, err))
	}
	if err != nil {
		return verifyResult{}, fmt.Errorf("%s: %w", path, err)
	}
	if tenant != "" && r.Tenant != tenant {
		return verifyResult{}, fmt.Errorf("the bundle is of tenant %q, not %q", r.Tenant, tenant)
	}
	return verifyResult{Verified: r.Summary(), Notes: r.Notes}, nil
}
