package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// cmdIntegrityVerify asks a node to re-hash its stored log now and compare
// roots with its peers (ComplianceService.VerifyIntegrity, admin). The
// report covers that node's copy only: run it against each node to check
// them all. It exits 1 when the report finds a violation.
func cmdIntegrityVerify(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var tf trustFlags
	var req trailv1.VerifyIntegrityRequest
	fs := newFlagSet("integrity verify")
	n.register(fs)
	tf.register(fs)
	fs.StringVar(&req.TenantId, "tenant", "", "verify only this `TENANT` (default: every tenant)")
	fs.StringVar(&req.Partition, "partition", "", "verify only this `YYYY-MM` partition of --tenant")
	if _, err := parseCommand(e, "integrity verify", fs, args, 0, 0); err != nil {
		return err
	}
	if err := checkIntegrityFlags(&req); err != nil {
		return err
	}
	var tr *trust
	if tf.vkeyFile != "" {
		t, err := tf.load()
		if err != nil {
			return err
		}
		tr = &t
	}
	return withClient(ctx, e, &n, trailv1.NewComplianceServiceClient, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.VerifyIntegrity(ctx, &req)
		if err != nil {
			return wrapRPC("VerifyIntegrity", err)
		}
		signedBy := ""
		if tr != nil {
			if signedBy, err = tr.checkIntegrityReport(resp); err != nil {
				return fmt.Errorf("FAILED: %w", err)
			}
		}
		if n.json {
			err = writeJSON(e.stdout, resp)
		} else {
			err = printIntegrityReport(e, resp.GetReport(), signedBy)
		}
		if err != nil {
			return err
		}
		if !resp.GetReport().GetOk() {
			return errors.New("integrity violation: see the report")
		}
		return nil
	})
}

func checkIntegrityFlags(req *trailv1.VerifyIntegrityRequest) error {
	if req.TenantId != "" {
		if err := validTenant(req.TenantId); err != nil {
			return usageErrorf("%v", err)
		}
	}
	if req.Partition == "" {
		return nil
	}
	if req.TenantId == "" {
		return usageErrorf("--partition needs --tenant")
	}
	if err := validPartition(req.Partition); err != nil {
		return usageErrorf("%v", err)
	}
	return nil
}

// checkIntegrityReport verifies the signed note with the log key and that
// it commits to the report received: its verdict and the SHA-256 of the
// report's deterministic encoding. It returns the key that signed it.
func (t trust) checkIntegrityReport(resp *trailv1.VerifyIntegrityResponse) (string, error) {
	n, err := note.Open([]byte(resp.GetSignedNote()), note.VerifierList(t.verifier))
	if err != nil {
		return "", fmt.Errorf("integrity report signature: %w", err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(resp.GetReport())
	if err != nil {
		return "", fmt.Errorf("encode integrity report: %w", err)
	}
	sum := sha256.Sum256(b)
	verdict := "ok"
	if !resp.GetReport().GetOk() {
		verdict = "violation"
	}
	want := fmt.Sprintf("%s integrity report v1\nnode %s\n%s sha256:%s\n",
		t.logName, resp.GetReport().GetNodeId(), verdict, hex.EncodeToString(sum[:]))
	if n.Text != want {
		return "", fmt.Errorf("signed integrity report %q does not match the report received (want %q)", n.Text, want)
	}
	return t.keyLabel(), nil
}

func printIntegrityReport(e *env, r *trailv1.IntegrityReport, signedBy string) error {
	verdict := "ok"
	if !r.GetOk() {
		verdict = "VIOLATION"
	}
	err := keyValues(e.stdout, [][2]string{
		{"node", r.GetNodeId()},
		{"verdict", verdict},
		{"started", formatTime(r.GetStartedAt())},
		{"finished", formatTime(r.GetFinishedAt())},
		{"partitions", fmt.Sprint(len(r.GetPartitions()))},
		{"entries hashed", formatUint(r.GetEntriesHashed())},
		{"signed by", signedBy},
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "TENANT\tPARTITION\tSIZE\tSEALED\tROOT\tPEERS\tOK\tSUSPECTS\tPROBLEM")
	for _, p := range r.GetPartitions() {
		suspects := "-"
		if len(p.GetSuspects()) > 0 {
			suspects = strings.Join(p.GetSuspects(), ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%t\t%s\t%s\t%t\t%s\t%s\n", p.GetTenantId(), p.GetPartition(), p.GetSize(),
			p.GetSealed(), shortHex(p.GetRootHash()), peerSummary(p.GetPeers()), p.GetOk(), suspects, p.GetProblem())
	}
	return tw.Flush()
}

// peerSummary is "n2=match,n3=differs,n4=error" ("-" without peers).
func peerSummary(peers []*trailv1.PeerRoot) string {
	if len(peers) == 0 {
		return "-"
	}
	parts := make([]string, len(peers))
	for i, p := range peers {
		state := "match"
		switch {
		case p.GetError() != "":
			state = "error"
		case !p.GetMatch():
			state = "differs"
		}
		parts[i] = p.GetNodeId() + "=" + state
	}
	return strings.Join(parts, ",")
}
