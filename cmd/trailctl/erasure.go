package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"text/tabwriter"
	"time"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/shred"
)

// "trailctl privacy" and "trailctl erase": crypto-shredding (docs/erasure.md).

func cmdPrivacyGet(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("privacy get")
	n.register(fs)
	pos, err := parseCommand(e, "privacy get", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.GetPrivacySettings(ctx, &trailv1.GetPrivacySettingsRequest{TenantId: pos[0]})
		if err != nil {
			return wrapRPC("GetPrivacySettings", err)
		}
		return printPrivacy(e, resp, n.json)
	})
}

func cmdPrivacySet(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var seal, noSeal bool
	fs := newFlagSet("privacy set")
	n.register(fs)
	fs.BoolVar(&seal, "seal", false, "seal the changes and attributes of events with a subject_id under the subject's data key")
	fs.BoolVar(&noSeal, "no-seal", false, "stop sealing (events sealed so far stay sealed)")
	pos, err := parseCommand(e, "privacy set", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	if seal == noSeal {
		return usageErrorf("give --seal or --no-seal")
	}
	req := &trailv1.SetPrivacySettingsRequest{Settings: &trailv1.PrivacySettings{TenantId: pos[0], SealSubjectPayloads: seal}}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.SetPrivacySettings(ctx, req)
		if err != nil {
			return wrapRPC("SetPrivacySettings", err)
		}
		return printPrivacy(e, resp, n.json)
	})
}

func printPrivacy(e *env, s *trailv1.PrivacySettings, asJSON bool) error {
	if asJSON {
		return writeJSON(e.stdout, s)
	}
	state := "does not seal subject payloads"
	if s.GetSealSubjectPayloads() {
		state = "seals the changes and attributes of every event with a subject_id under that subject's data key"
	}
	_, err := fmt.Fprintf(e.stdout, "tenant %s %s\n", s.GetTenantId(), state)
	return err
}

func cmdErase(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var tenant, subject, reason, reference, out string
	fs := newFlagSet("erase")
	n.register(fs)
	fs.StringVar(&tenant, "tenant", "", "the subject's `TENANT`")
	fs.StringVar(&subject, "subject", "", "the data subject's `ID`")
	fs.StringVar(&reason, "reason", "", "why, one line (e.g. \"Art. 17(1)(b): consent withdrawn\"); required")
	fs.StringVar(&reference, "reference", "", "the request's `REF` (ticket, case number)")
	fs.StringVar(&out, "o", "", "also write the signed erasure receipt to `FILE` (verify it with trailctl verify --erasure)")
	if _, err := parseCommand(e, "erase", fs, args, 0, 0); err != nil {
		return err
	}
	if err := validTenant(tenant); err != nil {
		return usageErrorf("%v", err)
	}
	if subject == "" || reason == "" {
		return usageErrorf("--subject and --reason are required")
	}
	req := &trailv1.EraseSubjectRequest{TenantId: tenant, SubjectId: subject, Reason: reason, Reference: reference}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.EraseSubject(ctx, req)
		if err != nil {
			return wrapRPC("EraseSubject", err)
		}
		if out != "" {
			if err := writeFileAtomic(out, []byte(resp.GetReceipt().GetNote()), 0o644); err != nil {
				return err
			}
		}
		if n.json {
			return writeJSON(e.stdout, resp.GetReceipt())
		}
		return printErasures(e, []*trailv1.ErasureReceipt{resp.GetReceipt()})
	})
}

func cmdErasures(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var subject string
	fs := newFlagSet("erasures")
	n.register(fs)
	fs.StringVar(&subject, "subject", "", "only this data subject's erasures")
	pos, err := parseCommand(e, "erasures", fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := validTenant(pos[0]); err != nil {
		return usageErrorf("%v", err)
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.ListErasures(ctx, &trailv1.ListErasuresRequest{TenantId: pos[0], SubjectId: subject})
		if err != nil {
			return wrapRPC("ListErasures", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		return printErasures(e, resp.GetReceipts())
	})
}

func printErasures(e *env, rs []*trailv1.ErasureReceipt) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ERASED AT\tTENANT\tSUBJECT\tKEY\tRECORD\tBY\tREASON")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/%d\t%s\t%s\n", r.GetErasedAt().AsTime().Format(time.RFC3339), r.GetTenantId(), r.GetSubjectId(),
			hex.EncodeToString(r.GetKeyId()), r.GetRecord().GetPartition(), r.GetRecord().GetLeafIndex(), r.GetErasedBy(), r.GetReason())
	}
	return tw.Flush()
}

// verifyErasure checks a signed erasure receipt against the log key.
func (f *verifyFlags) verifyErasure(e *env, t trust) (verifyResult, error) {
	b, err := readInput(e, f.erasure, maxProofFileBytes)
	if err != nil {
		return verifyResult{}, err
	}
	st, err := shred.VerifyErasure(b, t.verifier)
	if err != nil {
		return verifyResult{}, fmt.Errorf("%s: %w", f.erasure, err)
	}
	if f.tenant != "" && st.Tenant != f.tenant {
		return verifyResult{}, fmt.Errorf("the receipt is of tenant %q, not %q", st.Tenant, f.tenant)
	}
	return verifyResult{Verified: []string{fmt.Sprintf(
		"OK erasure receipt signed by %s: tenant %s subject %q data key %s erased at %s by %s (%s); its record is leaf %d of %s/%s/%s",
		t.verifier.Name(), st.Tenant, st.Subject, hex.EncodeToString(st.KeyID), st.ErasedAt.Format(time.RFC3339), st.ErasedBy, st.Reason,
		st.Record.LeafIndex, st.Log, st.Tenant, st.Record.Partition)}}, nil
}

func cmdSealingRotate(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("sealing rotate")
	n.register(fs)
	if _, err := parseCommand(e, "sealing rotate", fs, args, 0, 0); err != nil {
		return err
	}
	return withCompliance(ctx, e, &n, func(ctx context.Context, c trailv1.ComplianceServiceClient) error {
		resp, err := c.RotateSealingKey(ctx, &trailv1.RotateSealingKeyRequest{})
		if err != nil {
			return wrapRPC("RotateSealingKey", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		_, err = fmt.Fprintf(e.stdout, "sealing secret %x in use (was %x); %d data keys re-wrapped\n",
			resp.GetCheckValue(), resp.GetPreviousCheckValue(), resp.GetRewrapped())
		return err
	})
}
