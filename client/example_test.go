package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/trailaudit/trail/client"
	"github.com/trailaudit/trail/internal/testnode"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// exampleNode starts a real single-node Trail for an example; a program of
// yours would instead know its cluster's addresses, an API key, and the
// log's verifier key (traild's log.vkey).
func exampleNode() *testnode.Node {
	n, err := testnode.Start("")
	if err != nil {
		log.Fatal(err)
	}
	return n
}

// A producer appends events and waits for their receipts: each is in the
// log exactly once when its receipt arrives, however many times the client
// had to resend it.
func Example() {
	node := exampleNode()
	defer node.Close()
	ctx := context.Background()

	c, err := client.New(client.Config{
		Addrs:     []string{node.Addr}, // any nodes of the cluster
		Token:     node.Admin,          // a producer API key
		Plaintext: true,                // loopback; use TLS across a network
		Tenant:    "acme",
		Source:    "billing",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	r, err := c.AppendWait(ctx, &trailv1.Event{
		EventId:  "invoice-42-created",
		Category: trailv1.Category_CATEGORY_FINANCIAL,
		Action:   "invoice.create",
		Outcome:  trailv1.Outcome_OUTCOME_SUCCESS,
		Actor:    &trailv1.Actor{Id: "alice", Type: "user"},
		Target:   &trailv1.Target{Type: "invoice", Id: "42"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.GetTenantId(), r.GetEventId(), "leaf", r.GetLeafIndex(), "duplicate", r.GetDuplicate())
	// Output: acme invoice-42-created leaf 0 duplicate false
}

// Append does not wait for the server: events are batched in the
// background and each Pending delivers its own receipt. Flush (or Close)
// waits for everything appended so far.
func ExampleClient_Append() {
	node := exampleNode()
	defer node.Close()
	ctx := context.Background()

	c, err := client.New(client.Config{Addrs: []string{node.Addr}, Token: node.Admin, Plaintext: true, Tenant: "acme"})
	if err != nil {
		log.Fatal(err)
	}
	var pending []*client.Pending
	for i := range 3 {
		p, err := c.Append(ctx, &trailv1.Event{
			EventId:  fmt.Sprintf("login-%d", i),
			Category: trailv1.Category_CATEGORY_AUTHENTICATION,
			Action:   "user.login",
			Outcome:  trailv1.Outcome_OUTCOME_SUCCESS,
			Actor:    &trailv1.Actor{Id: "bob"},
		})
		if err != nil {
			log.Fatal(err) // a context error: the buffer stayed full
		}
		pending = append(pending, p)
	}
	if err := c.Close(ctx); err != nil { // delivers, then stops
		log.Fatal(err)
	}
	for _, p := range pending {
		r, err := p.Wait(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.EventID(), "acknowledged, duplicate:", r.GetDuplicate())
	}
	// Output:
	// login-0 acknowledged, duplicate: false
	// login-1 acknowledged, duplicate: false
	// login-2 acknowledged, duplicate: false
}

// With a spool, Append returns once the event is fsync'd to local disk;
// events the cluster has not acknowledged when the producer stops (or
// crashes) are sent by the next client opened on the same directory.
func ExampleConfig_spool() {
	node := exampleNode()
	defer node.Close()
	dir, err := os.MkdirTemp("", "spool-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	c, err := client.New(client.Config{
		Addrs: []string{node.Addr}, Token: node.Admin, Plaintext: true, Tenant: "acme",
		SpoolDir: dir,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := c.AppendWait(ctx, &trailv1.Event{
		EventId: "export-7", Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "report.export",
		Outcome: trailv1.Outcome_OUTCOME_SUCCESS, Actor: &trailv1.Actor{Id: "carol"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		log.Fatal(err)
	}
	left, _ := os.ReadDir(dir)
	fmt.Println(r.GetEventId(), "acknowledged; files left in the spool besides its lock:", len(left)-1)
	// Output: export-7 acknowledged; files left in the spool besides its lock: 0
}

// A receipt is checked against the log's public key: Prove fetches the
// inclusion proof (with a key allowed to read), Verify checks the signed
// checkpoint, the entry and the Merkle path offline.
func ExampleVerifier_Verify() {
	node := exampleNode()
	defer node.Close()
	ctx := context.Background()

	c, err := client.New(client.Config{
		Addrs: []string{node.Addr}, Plaintext: true, Tenant: "acme",
		Token:     node.Admin, // producer key
		ReadToken: node.Admin, // auditor key, for Prove
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	r, err := c.AppendWait(ctx, &trailv1.Event{
		EventId: "patient-9-viewed", Category: trailv1.Category_CATEGORY_DATA_ACCESS, Action: "patient.view",
		Outcome: trailv1.Outcome_OUTCOME_SUCCESS, Actor: &trailv1.Actor{Id: "dr-who"},
		SubjectId: "citizen-9", PiiFieldsAccessed: []string{"diagnosis"}, PurposeCode: "treatment",
	})
	if err != nil {
		log.Fatal(err)
	}
	proof, err := c.Prove(ctx, r)
	if err != nil {
		log.Fatal(err)
	}
	v, err := client.NewVerifier(node.VKey) // the log's verifier key, e.g. read from log.vkey
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified:", v.Verify(r, proof) == nil)

	proof.EntryBytes[len(proof.EntryBytes)-1] ^= 1 // one bit of the stored entry changed
	fmt.Println("tampered entry verified:", v.Verify(r, proof) == nil)
	// Output:
	// verified: true
	// tampered entry verified: false
}
