package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trailaudit/trail/internal/syncbuf"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

func TestParseDays(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"1-5", "[1 2 3 4 5]", true},
		{"1,2,6", "[1 2 6]", true},
		{"7", "[7]", true},
		{"0-5", "", false},
		{"5-1", "", false},
		{"mon", "", false},
		{"1,8", "", false},
	}
	for _, tt := range tests {
		got, err := parseDays(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("parseDays(%q) error %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && fmt.Sprint(got) != tt.want {
			t.Errorf("parseDays(%q) = %v, want %s", tt.in, got, tt.want)
		}
	}
}

// TestAnomalyRulesAndSubscribeCLI sets a tenant's rules with trailctl
// against a real server, then watches "trailctl subscribe" print the
// anomaly an off-hours access raises.
func TestAnomalyRulesAndSubscribeCLI(t *testing.T) {
	rs := startRealServer(t)
	out := rs.runOK(t, rs.admin, "anomaly", "set", "acme", "--working-hours", "08:00-18:00", "--time-zone", "Europe/Tallinn",
		"--working-days", "1-5", "--max-subjects-per-hour", "50", "--purpose", "case-work", "--purpose", "audit")
	for _, want := range []string{"08:00-18:00 Europe/Tallinn, days 1,2,3,4,5", "50", "case-work, audit"} {
		if !strings.Contains(out, want) {
			t.Fatalf("anomaly set printed:\n%s\nwant %q", out, want)
		}
	}
	// Changing one rule keeps the others.
	rs.runOK(t, rs.admin, "anomaly", "set", "acme", "--max-subjects-per-hour", "60")
	out = rs.runOK(t, rs.admin, "anomaly", "get", "acme", "--json")
	if !strings.Contains(out, `"max_distinct_subjects_per_hour":60`) || !strings.Contains(out, `"working_hours_start":"08:00"`) {
		t.Fatalf("rules after a partial change:\n%s", out)
	}
	var errb, sout syncbuf.Buffer
	if code := rs.run(context.Background(), rs.admin, &sout, &errb, "anomaly", "set", "acme", "--working-hours", "8-18"); code == exitOK {
		t.Fatal("malformed working hours accepted")
	} else if !strings.Contains(errb.String(), "HH:MM") {
		t.Fatalf("error for malformed hours: %s", errb.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var subOut, subErr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- rs.run(ctx, rs.admin, &subOut, &subErr, "subscribe", "acme", "--type", "audit.security_anomaly")
	}()

	conn, err := grpc.NewClient(rs.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+rs.admin)
	sunday3am := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC) // 03:00 in Tallinn
	ev := &trailv1.Event{
		TenantId: "acme", EventId: "night-read", Category: trailv1.Category_CATEGORY_DATA_ACCESS,
		Action: "record.view", Outcome: trailv1.Outcome_OUTCOME_SUCCESS, Actor: &trailv1.Actor{Id: "clerk-9"},
		SubjectId: "citizen-4", PurposeCode: "case-work", PiiFieldsAccessed: []string{"address"},
		OccurredAt: timestamppb.New(sunday3am),
	}
	// The subscription starts asynchronously; append until it reports.
	for i := 0; !strings.Contains(subOut.String(), "off_hours_access"); i++ {
		if i == 100 {
			t.Fatalf("subscribe printed nothing about the off-hours access:\n%s\n%s", subOut.String(), subErr.String())
		}
		ev.EventId = "night-read-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		if _, err := trailv1.NewIngestServiceClient(conn).Append(actx, &trailv1.AppendRequest{Event: ev}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(subOut.String(), "actor clerk-9") {
		t.Fatalf("subscribe line lacks the actor:\n%s", subOut.String())
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("subscribe ended with %d after interruption: %s", code, subErr.String())
	}
}
