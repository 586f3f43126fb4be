package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// maxResponseBytes bounds a witness's answer: a few signature lines.
const maxResponseBytes = 16 << 10

// Client submits a log's checkpoints to one witness.
type Client struct {
	// URL is the witness's submission prefix; add-checkpoint is posted to
	// URL + "/add-checkpoint".
	URL string
	// Verifier is the witness's cosignature/v1 key
	// (NewCosignatureVerifier); cosignatures by any other key are ignored.
	Verifier note.Verifier
	// HTTP is the client to use (default http.DefaultClient). Its timeout,
	// or the context's, bounds a call.
	HTTP *http.Client
}

// ConflictError is the witness's 409 answer: it last cosigned a checkpoint
// of Size, not of the old size the request named. The caller retries with
// a proof from Size, or, if Size is above its own, has found a witness
// that saw a larger tree than the log now has.
type ConflictError struct{ Size uint64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness: conflict: the witness last cosigned size %d", e.Size)
}

// StatusError is any other refusal: 400 malformed, 403 signature not
// trusted, 404 unknown origin, 422 inconsistent, 5xx.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("witness: HTTP %d: %s", e.Code, strings.TrimSpace(e.Body))
}

// AddCheckpoint submits req and returns the witness's cosignature lines,
// each verified against c.Verifier on the submitted checkpoint: appended
// to req.Checkpoint, they make a note that also carries the cosignatures.
func (c *Client) AddCheckpoint(ctx context.Context, req AddCheckpointRequest) ([]byte, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+AddCheckpointPath, bytes.NewReader(req.Marshal()))
	if err != nil {
		return nil, fmt.Errorf("witness: add-checkpoint: %w", err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("witness: add-checkpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("witness: add-checkpoint: read response: %w", err)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("witness: add-checkpoint: response larger than %d bytes", maxResponseBytes)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return c.cosignatures(req.Checkpoint, body)
	case http.StatusConflict:
		return nil, parseConflict(resp.Header.Get("Content-Type"), body)
	}
	return nil, &StatusError{Code: resp.StatusCode, Body: string(clip(body))}
}

// parseConflict reads a 409 body: the witness's size and a newline.
func parseConflict(contentType string, body []byte) error {
	if ct, _, _ := strings.Cut(contentType, ";"); strings.TrimSpace(ct) != SizeContentType {
		return &StatusError{Code: http.StatusConflict, Body: fmt.Sprintf("content type %q, want %s: %s", contentType, SizeContentType, clip(body))}
	}
	num, ok := bytes.CutSuffix(body, []byte("\n"))
	if !ok {
		return &StatusError{Code: http.StatusConflict, Body: "size body does not end in a newline"}
	}
	size, err := merkle.ParseDecimal(string(num))
	if err != nil {
		return &StatusError{Code: http.StatusConflict, Body: fmt.Sprintf("size body: %v", err)}
	}
	return &ConflictError{Size: size}
}

// cosignatures verifies a 200 body: signature lines that, appended to the
// checkpoint note, carry at least one valid cosignature by c.Verifier. It
// returns those lines only.
func (c *Client) cosignatures(checkpoint, body []byte) ([]byte, error) {
	if len(body) == 0 || !bytes.HasPrefix(body, []byte("— ")) || body[len(body)-1] != '\n' {
		return nil, fmt.Errorf("witness: add-checkpoint: response is not signature lines: %q", clip(body))
	}
	msg := append(append([]byte(nil), checkpoint...), body...)
	n, err := note.Open(msg, note.VerifierList(c.Verifier))
	if err != nil {
		return nil, fmt.Errorf("witness: add-checkpoint: no valid cosignature by %s: %w", c.Verifier.Name(), err)
	}
	return SignatureLines(n.Sigs), nil
}

// SignatureLines formats note signatures as signature lines.
func SignatureLines(sigs []note.Signature) []byte {
	var b bytes.Buffer
	for _, s := range sigs {
		fmt.Fprintf(&b, "— %s %s\n", s.Name, s.Base64)
	}
	return b.Bytes()
}

// clip shortens what an error quotes from a response.
func clip(b []byte) []byte {
	const max = 200
	if len(b) > max {
		return b[:max]
	}
	return b
}

// ErrNotCosigned is the monitoring endpoint's 404: the witness has never
// cosigned a checkpoint of the origin.
var ErrNotCosigned = errors.New("witness: no checkpoint of this origin cosigned")

// FetchCheckpoint reads the latest checkpoint a witness cosigned for
// origin from its monitoring prefix (GET <prefix>/<hex SHA-256 of
// origin>/checkpoint): the log's signed note with the witness's
// cosignature. The caller verifies both; nothing here is trusted.
func FetchCheckpoint(ctx context.Context, hc *http.Client, monitoringPrefix, origin string) ([]byte, error) {
	url := strings.TrimSuffix(monitoringPrefix, "/") + "/" + originHash(origin) + "/checkpoint"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("witness: fetch checkpoint: %w", err)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("witness: fetch checkpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStateBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("witness: fetch checkpoint: %w", err)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrNotCosigned, origin)
	case resp.StatusCode != http.StatusOK:
		return nil, &StatusError{Code: resp.StatusCode, Body: string(clip(body))}
	case len(body) > maxStateBytes:
		return nil, fmt.Errorf("witness: fetch checkpoint: larger than %d bytes", maxStateBytes)
	}
	return body, nil
}
