package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// receiptPrinter prints one line per event of a bulk append, and counts.
type receiptPrinter struct {
	w          io.Writer
	json       bool
	header     bool
	appended   int
	duplicates int
	rejected   int
}

func newReceiptPrinter(w io.Writer, asJSON bool) *receiptPrinter {
	return &receiptPrinter{w: w, json: asJSON}
}

// batch prints the results of one acknowledged batch.
func (p *receiptPrinter) batch(meta sentBatch, results []*trailv1.AppendResult) error {
	for _, r := range results {
		switch {
		case r.GetError() != nil:
			p.rejected++
		case r.GetReceipt().GetDuplicate():
			p.duplicates++
		default:
			p.appended++
		}
	}
	if p.json {
		return p.batchJSON(meta, results)
	}
	return p.batchTable(meta, results)
}

// bulkLine is one --json line of a bulk append: the input line, the event
// id, and the receipt or error (Error.code is a google.rpc.Code).
type bulkLine struct {
	Line    int             `json:"line"`
	EventID string          `json:"event_id"`
	Receipt json.RawMessage `json:"receipt,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

func (p *receiptPrinter) batchJSON(meta sentBatch, results []*trailv1.AppendResult) error {
	enc := json.NewEncoder(p.w)
	for i, r := range results {
		l := bulkLine{Line: meta.lines[i], EventID: meta.ids[i]}
		var err error
		if e := r.GetError(); e != nil {
			l.Error, err = marshalJSON(e)
		} else {
			l.Receipt, err = marshalJSON(r.GetReceipt())
		}
		if err != nil {
			return err
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return nil
}

func (p *receiptPrinter) batchTable(meta sentBatch, results []*trailv1.AppendResult) error {
	tw := newTable(p.w)
	if !p.header {
		fmt.Fprintln(tw, "LINE\tEVENT_ID\tPARTITION\tLEAF\tRESULT")
		p.header = true
	}
	for i, r := range results {
		rc := r.GetReceipt()
		switch {
		case r.GetError() != nil:
			fmt.Fprintf(tw, "%d\t%s\t\t\trejected (code %d): %s\n", meta.lines[i], meta.ids[i], r.GetError().GetCode(), r.GetError().GetMessage())
		case rc.GetDuplicate():
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\tduplicate (original receipt)\n", meta.lines[i], meta.ids[i], rc.GetPartition(), rc.GetLeafIndex())
		default:
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\tappended\n", meta.lines[i], meta.ids[i], rc.GetPartition(), rc.GetLeafIndex())
		}
	}
	return tw.Flush()
}

func (p *receiptPrinter) summary(w io.Writer, elapsed time.Duration) {
	total := p.appended + p.duplicates + p.rejected
	rate := float64(total) / max(elapsed.Seconds(), 1e-3)
	fmt.Fprintf(w, "appended %d events, %d duplicates, %d rejected in %s (%.0f events/s)\n",
		p.appended, p.duplicates, p.rejected, elapsed.Round(time.Millisecond), rate)
}
