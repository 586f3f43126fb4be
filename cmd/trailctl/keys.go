package main

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func cmdKeysCreate(ctx context.Context, e *env, args []string) error {
	var n netCommand
	var role, description string
	var tenants stringList
	fs := newFlagSet("keys create")
	n.register(fs)
	fs.StringVar(&role, "role", "", "role: producer, auditor, privacy_officer or admin")
	fs.Var(&tenants, "tenant", "tenant the key may act on (repeatable; none for admin keys)")
	fs.StringVar(&description, "description", "", "what the key is for")
	if _, err := parseCommand(e, "keys create", fs, args, 0, 0); err != nil {
		return err
	}
	r, err := parseRole(role)
	if err != nil {
		return usageErrorf("--role: %v", err)
	}
	for _, t := range tenants {
		if err := validTenant(t); err != nil {
			return usageErrorf("--tenant: %v", err)
		}
	}
	req := &trailv1.CreateAPIKeyRequest{Role: r, Tenants: tenants, Description: description}
	return withAdmin(ctx, e, &n, func(ctx context.Context, c trailv1.AdminServiceClient) error {
		resp, err := c.CreateAPIKey(ctx, req)
		if err != nil {
			return wrapRPC("CreateAPIKey", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		if err := printKeys(e, []*trailv1.APIKey{resp.GetKey()}); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "\ntoken: %s\n", resp.GetToken())
		fmt.Fprintln(e.stderr, "store the token now: only its hash is kept, and it is never shown again")
		return nil
	})
}

func cmdKeysList(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("keys list")
	n.register(fs)
	if _, err := parseCommand(e, "keys list", fs, args, 0, 0); err != nil {
		return err
	}
	return withAdmin(ctx, e, &n, func(ctx context.Context, c trailv1.AdminServiceClient) error {
		resp, err := c.ListAPIKeys(ctx, &trailv1.ListAPIKeysRequest{})
		if err != nil {
			return wrapRPC("ListAPIKeys", err)
		}
		if n.json {
			return writeJSON(e.stdout, resp)
		}
		return printKeys(e, resp.GetKeys())
	})
}

func printKeys(e *env, keys []*trailv1.APIKey) error {
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "ID\tROLE\tTENANTS\tCREATED\tREVOKED\tDESCRIPTION")
	for _, k := range keys {
		tenants := strings.Join(k.GetTenants(), ",")
		if tenants == "" {
			tenants = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\n", k.GetId(), shortEnum("ROLE_", k.GetRole().String()), tenants,
			formatTime(k.GetCreatedAt()), k.GetRevoked(), k.GetDescription())
	}
	return tw.Flush()
}

func cmdKeysRevoke(ctx context.Context, e *env, args []string) error {
	var n netCommand
	fs := newFlagSet("keys revoke")
	n.register(fs)
	pos, err := parseCommand(e, "keys revoke", fs, args, 1, 1)
	if err != nil {
		return err
	}
	return withAdmin(ctx, e, &n, func(ctx context.Context, c trailv1.AdminServiceClient) error {
		resp, err := c.RevokeAPIKey(ctx, &trailv1.RevokeAPIKeyRequest{Id: pos[0]})
		if err != nil {
			return wrapRPC("RevokeAPIKey", err)
		}
		return done(e, n.json, resp, "key %s revoked", pos[0])
	})
}

// done reports a call whose response carries nothing: JSON for scripts, a
// sentence for people.
func done(e *env, asJSON bool, resp proto.Message, format string, args ...any) error {
	if asJSON {
		return writeJSON(e.stdout, resp)
	}
	_, err := fmt.Fprintf(e.stdout, format+"\n", args...)
	return err
}
