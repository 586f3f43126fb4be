package server

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"

	"google.golang.org/grpc"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// downloadChunkBytes is the size of one DownloadChunk of a report or an
// export.
const downloadChunkBytes = 256 << 10

// chunkWriter sends what is written to it as DownloadChunks of
// downloadChunkBytes; the first carries the content type and file name.
type chunkWriter struct {
	stream      grpc.ServerStreamingServer[trailv1.DownloadChunk]
	contentType string
	filename    string
	buf         []byte
	started     bool
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, downloadChunkBytes)
		}
		k := min(len(p), downloadChunkBytes-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == downloadChunkBytes {
			if err := w.send(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// Close sends what is buffered, and at least one chunk: an empty document
// still has a type and a name.
func (w *chunkWriter) Close() error {
	if len(w.buf) == 0 && w.started {
		return nil
	}
	return w.send()
}

// send sends the buffered bytes. The buffer is not reused after Send: gRPC
// may still hold the message (stats handlers read messages lazily).
func (w *chunkWriter) send() error {
	msg := &trailv1.DownloadChunk{Data: w.buf}
	if !w.started {
		msg.ContentType, msg.Filename, w.started = w.contentType, w.filename, true
	}
	w.buf = nil
	return w.stream.Send(msg)
}

// relayDownload answers an HTTP download route with the bytes of a
// DownloadChunk stream, rather than the gateway's JSON-wrapped chunks. An
// error before the first chunk gets a proper HTTP status through fail; one
// after it aborts the response, so a client never mistakes a cut document
// for a whole one. what names the download in the log.
func (s *Server) relayDownload(ctx context.Context, w http.ResponseWriter, stream grpc.ServerStreamingClient[trailv1.DownloadChunk],
	fail func(context.Context, error), what string) {
	first, err := stream.Recv()
	if err != nil {
		fail(ctx, err)
		return
	}
	w.Header().Set("Content-Type", first.GetContentType())
	w.Header().Set("Content-Disposition", attachment(first.GetFilename()))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, err := w.Write(first.GetData()); err != nil {
		return // the client went away
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// The status line is gone; cutting the connection makes the
			// client see a failed transfer.
			s.log.Warn("download cut", "download", what, "err", err)
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return
		}
	}
}

// attachment is the Content-Disposition of a download named name: the
// quoted-string form for plain ASCII names (what every client parses), and
// mime's RFC 2231 encoding for any other.
func attachment(name string) string {
	for _, r := range name {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return mime.FormatMediaType("attachment", map[string]string{"filename": name})
		}
	}
	return `attachment; filename="` + name + `"`
}
