package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/trailaudit/trail/merkle"
	tlogwitness "github.com/trailaudit/trail/witness"
)

// witnessServeFlags configure "trailctl witness serve".
type witnessServeFlags struct {
	listen   string
	stateDir string
	keyFile  string
	logKeys  []string
	prefixes []string
}

func (f *witnessServeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7380", "serve the witness API on `ADDR` (plain HTTP: put TLS in front of it for a public witness)")
	fs.StringVar(&f.stateDir, "state-dir", "", "keep the latest cosigned checkpoint of each log origin in `DIR` (created if missing)")
	fs.StringVar(&f.keyFile, "key", "", "the witness's private key in `FILE` (as written by witness keygen)")
	fs.Func("log-vkey", "cosign checkpoints signed by the log key in `FILE` (repeatable)", func(s string) error {
		f.logKeys = append(f.logKeys, s)
		return nil
	})
	fs.Func("origin-prefix", "the origins the matching --log-vkey signs start with `PREFIX` (repeatable, one per --log-vkey; default: the key's name and a slash, as Trail's origins <log>/<tenant>/<YYYY-MM>)", func(s string) error {
		f.prefixes = append(f.prefixes, s)
		return nil
	})
}

func (f *witnessServeFlags) check() error {
	switch {
	case f.stateDir == "":
		return usageErrorf("--state-dir DIR is required")
	case f.keyFile == "":
		return usageErrorf("--key FILE is required")
	case len(f.logKeys) == 0:
		return usageErrorf("--log-vkey FILE is required")
	case len(f.prefixes) > 0 && len(f.prefixes) != len(f.logKeys):
		return usageErrorf("give one --origin-prefix per --log-vkey, or none")
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return usageErrorf("--listen: %v", err)
	}
	return nil
}

// config reads the keys into a witness configuration.
func (f *witnessServeFlags) config(log *slog.Logger) (tlogwitness.Config, error) {
	skey, err := readFileLimit(f.keyFile, maxKeyBytes)
	if err != nil {
		return tlogwitness.Config{}, err
	}
	cfg := tlogwitness.Config{CosignerKey: strings.TrimSpace(string(skey)), StateDir: f.stateDir, Logger: log}
	if _, err := tlogwitness.NewCosigner(cfg.CosignerKey); err != nil {
		return cfg, usageErrorf("--key %s: %v", f.keyFile, err)
	}
	for i, file := range f.logKeys {
		b, err := readFileLimit(file, maxKeyBytes)
		if err != nil {
			return cfg, err
		}
		v, err := merkle.NewVerifier(strings.TrimSpace(string(b)))
		if err != nil {
			return cfg, usageErrorf("--log-vkey %s: %v", file, err)
		}
		prefix := v.Name() + "/"
		if len(f.prefixes) > 0 {
			prefix = f.prefixes[i]
		}
		cfg.Logs = append(cfg.Logs, tlogwitness.Log{Verifier: v, OriginPrefix: prefix})
	}
	return cfg, nil
}

// cmdWitnessServe runs a C2SP tlog-witness until interrupted.
func cmdWitnessServe(ctx context.Context, e *env, args []string) error {
	var f witnessServeFlags
	fs := newFlagSet("witness serve")
	f.register(fs)
	if _, err := parseCommand(e, "witness serve", fs, args, 0, 0); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	cfg, err := f.config(log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.stateDir, 0o700); err != nil {
		return ioError(err)
	}
	w, err := tlogwitness.NewServer(cfg)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return ioError(err)
	}
	return serveWitness(ctx, e, w, lis)
}

// serveWitness serves w on lis until ctx ends, then shuts down gracefully.
func serveWitness(ctx context.Context, e *env, w *tlogwitness.Server, lis net.Listener) error {
	srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(e.stderr, "witness %s serving on http://%s\n", w.Name(), lis.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return ioError(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return ioError(err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return ioError(err)
	}
	return nil
}

// cmdWitnessKeygen writes a new witness private key and prints its
// cosignature verifier key, the one logs and auditors configure.
func cmdWitnessKeygen(_ context.Context, e *env, args []string) error {
	var out string
	fs := newFlagSet("witness keygen")
	fs.StringVar(&out, "out", "", "write the private key to `FILE` (mode 0600; refused if it exists); the verifier key goes to FILE.pub and stdout")
	pos, err := parseCommand(e, "witness keygen", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if out == "" {
		return usageErrorf("--out FILE is required")
	}
	skey, vkey, err := tlogwitness.GenerateKey(pos[0])
	if err != nil {
		return usageErrorf("%v", err)
	}
	kf, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return ioError(err)
	}
	_, err = kf.WriteString(skey + "\n")
	if cerr := kf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return ioError(err)
	}
	if err := writeFileAtomic(out+".pub", []byte(vkey+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, vkey)
	return nil
}
