package witness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailaudit/trail/merkle"
)

// Log is a log the witness cosigns for: its key, and the origins it signs.
type Log struct {
	// Verifier is the log's signed-note verifier key ("name+hash+key").
	Verifier note.Verifier
	// OriginPrefix: the witness accepts checkpoints of every origin that
	// starts with it and is longer. Trail signs one origin per tenant and
	// month, "<log name>/<tenant>/<YYYY-MM>", so its prefix is
	// "<log name>/" (the default, from the key's name).
	OriginPrefix string
}

// Config configures a witness Server.
type Config struct {
	// CosignerKey is the witness's private signed-note key (Ed25519).
	CosignerKey string
	// Logs are the logs the witness knows; a checkpoint of any other
	// origin is refused with 404.
	Logs []Log
	// StateDir holds the latest cosigned checkpoint per origin. It must
	// exist. Two witnesses must never share one.
	StateDir string
	Logger   *slog.Logger
}

// Server is a C2SP tlog-witness: its Handler serves add-checkpoint and the
// monitoring endpoint. Checking a request against the stored state and
// storing the new state happen under one lock, so concurrent requests can
// never roll the state back (the race the protocol warns of).
type Server struct {
	cfg    Config
	log    *slog.Logger
	signer *fnote.Signer
	own    note.Verifier
	state  stateDir

	mu sync.Mutex // held from reading an origin's state to storing the new one
}

// NewServer checks cfg and returns a witness.
func NewServer(cfg Config) (*Server, error) {
	signer, err := fnote.NewSignerForCosignatureV1(cfg.CosignerKey)
	if err != nil {
		return nil, fmt.Errorf("witness: parse cosigner key: %w", err)
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("witness: no logs configured")
	}
	for i, l := range cfg.Logs {
		if l.Verifier == nil || l.OriginPrefix == "" {
			return nil, fmt.Errorf("witness: log %d has no verifier or origin prefix", i)
		}
	}
	if st, err := os.Stat(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("witness: state directory: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("witness: state directory %s is not a directory", cfg.StateDir)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{cfg: cfg, log: log, signer: signer, own: signer.Verifier(), state: stateDir{cfg.StateDir}}, nil
}

// Name is the witness key's name, as its cosignature lines give it.
func (s *Server) Name() string { return s.signer.Name() }

// Handler serves POST /add-checkpoint and GET /<origin hash>/checkpoint,
// relative to the witness's prefix (mount it with http.StripPrefix).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+AddCheckpointPath, s.serveAddCheckpoint)
	mux.HandleFunc("GET /{hash}/checkpoint", s.serveCheckpoint)
	return mux
}

// refusal is an HTTP status and the reason given with it.
type refusal struct {
	code   int
	reason string
}

func (r *refusal) Error() string { return r.reason }

func refuse(code int, format string, args ...any) *refusal {
	return &refusal{code: code, reason: fmt.Sprintf(format, args...)}
}

func (s *Server) serveAddCheckpoint(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		code := http.StatusBadRequest
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, fmt.Sprintf("request body: %v", err), code)
		return
	}
	sig, known, err := s.addCheckpoint(body)
	var rf *refusal
	switch {
	case errors.As(err, &rf) && rf.code == http.StatusConflict:
		w.Header().Set("Content-Type", SizeContentType)
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintf(w, "%d\n", known)
	case errors.As(err, &rf):
		s.log.Warn("add-checkpoint refused", "status", rf.code, "reason", rf.reason)
		http.Error(w, rf.reason, rf.code)
	case err != nil:
		s.log.Error("add-checkpoint", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(sig)
	}
}

// addCheckpoint runs the protocol's checks in its order and, if all pass,
// cosigns and stores the checkpoint. It returns the cosignature line, or a
// *refusal (with the witness's size for 409), or an internal error.
func (s *Server) addCheckpoint(body []byte) (sig []byte, knownSize uint64, err error) {
	req, err := ParseAddCheckpoint(body)
	if err != nil {
		return nil, 0, refuse(http.StatusBadRequest, "%v", err)
	}
	origin, _, _ := strings.Cut(string(req.Checkpoint), "\n")
	verifiers := s.verifiersFor(origin)
	if len(verifiers) == 0 {
		return nil, 0, refuse(http.StatusNotFound, "unknown log origin %q", clipString(origin))
	}
	n, err := note.Open(req.Checkpoint, note.VerifierList(verifiers...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, 0, refuse(http.StatusForbidden, "checkpoint is not signed by a key trusted for %q: %v", clipString(origin), err)
		}
		return nil, 0, refuse(http.StatusBadRequest, "checkpoint note: %v", err)
	}
	cp, err := merkle.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return nil, 0, refuse(http.StatusBadRequest, "%v", err)
	}
	if req.OldSize > cp.Size {
		return nil, 0, refuse(http.StatusBadRequest, "old size %d is above the checkpoint size %d", req.OldSize, cp.Size)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	hash := originHash(cp.Origin)
	prev, err := s.latest(hash, cp.Origin)
	if err != nil {
		return nil, 0, err
	}
	if req.OldSize != prev.Size {
		return nil, prev.Size, refuse(http.StatusConflict, "old size %d, the witness has size %d", req.OldSize, prev.Size)
	}
	if cp.Size == 0 && cp.Root != merkle.EmptyRoot() {
		return nil, 0, refuse(http.StatusUnprocessableEntity, "a checkpoint of size 0 must have the empty tree's root")
	}
	if err := merkle.VerifyConsistency(prev.Size, cp.Size, prev.Root, cp.Root, req.Proof); err != nil {
		s.log.Warn("inconsistent checkpoint", "origin", cp.Origin, "old_size", prev.Size, "size", cp.Size, "checkpoint", string(req.Checkpoint), "err", err)
		return nil, 0, refuse(http.StatusUnprocessableEntity, "checkpoint is not consistent with the witness's size %d: %v", prev.Size, err)
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, s.signer)
	if err != nil {
		return nil, 0, fmt.Errorf("witness: cosign: %w", err)
	}
	sig = cosigned[len(n.Text)+1:]
	if err := s.state.save(hash, storedNote(n, sig)); err != nil {
		return nil, 0, err
	}
	s.log.Info("cosigned", "origin", cp.Origin, "old_size", req.OldSize, "size", cp.Size)
	return sig, 0, nil
}

// storedNote is the checkpoint with the log signatures the witness
// verified and its own cosignature line, as the monitoring endpoint
// serves it. Signatures by keys the witness does not know are dropped.
func storedNote(n *note.Note, ownSig []byte) []byte {
	var b bytes.Buffer
	b.WriteString(n.Text)
	b.WriteByte('\n')
	b.Write(SignatureLines(n.Sigs))
	b.Write(ownSig)
	return b.Bytes()
}

// latest is the checkpoint the witness last cosigned for origin: size 0
// and the empty root if none. The stored note must carry the witness's own
// cosignature and the right origin: the state directory is trusted no more
// than it has to be.
func (s *Server) latest(hash, origin string) (merkle.Checkpoint, error) {
	b, err := s.state.load(hash)
	if err != nil || b == nil {
		return merkle.Checkpoint{Origin: origin, Root: merkle.EmptyRoot()}, err
	}
	n, err := note.Open(b, note.VerifierList(s.own))
	if err != nil {
		return merkle.Checkpoint{}, fmt.Errorf("witness: state of %q does not carry this witness's cosignature: %w", origin, err)
	}
	cp, err := merkle.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return merkle.Checkpoint{}, fmt.Errorf("witness: state of %q: %w", origin, err)
	}
	if cp.Origin != origin {
		return merkle.Checkpoint{}, fmt.Errorf("witness: state file %s holds origin %q, want %q", hash, cp.Origin, origin)
	}
	return cp, nil
}

// verifiersFor returns the keys trusted for origin.
func (s *Server) verifiersFor(origin string) []note.Verifier {
	var vs []note.Verifier
	for _, l := range s.cfg.Logs {
		if len(origin) > len(l.OriginPrefix) && strings.HasPrefix(origin, l.OriginPrefix) {
			vs = append(vs, l.Verifier)
		}
	}
	return vs
}

// serveCheckpoint is the monitoring endpoint: the latest cosigned
// checkpoint of the origin whose hash the path names.
func (s *Server) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	hash := r.PathValue("hash")
	if !isOriginHash(hash) {
		http.Error(w, "not an origin hash (64 lowercase hex digits)", http.StatusNotFound)
		return
	}
	s.mu.Lock()
	b, err := s.state.load(hash)
	s.mu.Unlock()
	switch {
	case err != nil:
		s.log.Error("monitoring checkpoint", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	case b == nil:
		http.Error(w, "no checkpoint cosigned for this origin", http.StatusNotFound)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	}
}

func isOriginHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func clipString(s string) string { return string(clip([]byte(s))) }
