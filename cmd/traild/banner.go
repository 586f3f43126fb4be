package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// adminTokenPrefix starts the line that carries the first admin token, so
// that scripts (the compose end-to-end test) can find it in the output.
const adminTokenPrefix = "admin token: "

// printBanner shows the first admin API key, the one time it exists in
// clear, with what a newcomer needs next: the addresses and where the
// public key auditors verify against is.
func printBanner(w io.Writer, d *daemon, token string) {
	scheme, transport := "http", "plaintext"
	if d.tls.tls != nil {
		scheme, transport = "https", "TLS"
		if d.tls.clientCAs != nil {
			transport = "mutual TLS"
		}
	}
	fmt.Fprintln(w, "Trail is ready. The cluster's first admin API key is shown only this once; store it now:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, adminTokenPrefix+token)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  node\t%s of cluster %s\n", d.id.NodeID, d.id.ClusterID)
	grpcAddr := d.api
	if d.api != d.bound.GRPC {
		grpcAddr += " (listening on " + d.bound.GRPC + ")"
	}
	fmt.Fprintf(tw, "  gRPC\t%s, %s\n", grpcAddr, transport)
	fmt.Fprintf(tw, "  HTTP\t%s://%s (REST under /api/v1/audit, /readyz, /metrics)\n", scheme, d.bound.HTTP)
	if d.cfg.Console {
		fmt.Fprintf(tw, "  console\t%s://%s/console/ (sign in with an API key)\n", scheme, d.bound.HTTP)
	}
	fmt.Fprintf(tw, "  Raft\t%s\n", d.node.Addr())
	fmt.Fprintf(tw, "  log key\t%s\n", d.key.id())
	fmt.Fprintf(tw, "  verifier key\t%s (give this file to auditors)\n", d.key.vkeyPath)
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Try: trailctl cluster status --addr %s --token <admin token>\n", d.api)
}
