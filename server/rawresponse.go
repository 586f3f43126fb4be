package server

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trailaudit/trail/engine"
)

// rawResponse is an ingest response already encoded; ingestCodec sends its
// bytes. Building a Receipt message per event and marshalling it through
// reflection cost more than the rest of the server's work on a receipt.
type rawResponse struct{ data []byte }

// Field numbers of the ingest responses (proto/trail/v1/trail.proto).
const (
	fieldAppendResponseReceipt = 1 // AppendResponse.receipt
	fieldBatchResults          = 1 // AppendBatchResponse.results
	fieldBatchFailed           = 2 // AppendBatchResponse.failed
	fieldResultReceipt         = 1 // AppendResult.receipt
	fieldResultError           = 2 // AppendResult.error
	fieldErrorCode             = 1
	fieldErrorMessage          = 2
	fieldReceiptTenant         = 1
	fieldReceiptEventID        = 2
	fieldReceiptPartition      = 3
	fieldReceiptLeafIndex      = 4
	fieldReceiptLeafHash       = 5
	fieldReceiptTreeSize       = 6
	fieldReceiptSequencerTime  = 7
	fieldReceiptDuplicate      = 8
	fieldReceiptAppliedIndex   = 9
	fieldTimestampSeconds      = 1
	fieldTimestampNanos        = 2
)

// appendBatchResponse encodes an AppendBatchResponse of the outcomes.
func appendBatchResponse(out []appendOutcome, applied uint64) []byte {
	b := make([]byte, 0, len(out)*160)
	var msg []byte
	failed := 0
	for _, o := range out {
		if o.err != nil {
			failed++
		}
		msg = appendResult(msg[:0], o, applied)
		b = protowire.AppendTag(b, fieldBatchResults, protowire.BytesType)
		b = protowire.AppendBytes(b, msg)
	}
	if failed > 0 {
		b = protowire.AppendTag(b, fieldBatchFailed, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(failed))
	}
	return b
}

// appendResult encodes one AppendResult.
func appendResult(b []byte, o appendOutcome, applied uint64) []byte {
	if o.err != nil {
		e := errorMessage(o.err)
		var m []byte
		if e.GetCode() != 0 {
			m = protowire.AppendTag(m, fieldErrorCode, protowire.VarintType)
			m = protowire.AppendVarint(m, uint64(int64(e.GetCode())))
		}
		if e.GetMessage() != "" {
			m = protowire.AppendTag(m, fieldErrorMessage, protowire.BytesType)
			m = protowire.AppendString(m, e.GetMessage())
		}
		b = protowire.AppendTag(b, fieldResultError, protowire.BytesType)
		return protowire.AppendBytes(b, m)
	}
	b = protowire.AppendTag(b, fieldResultReceipt, protowire.BytesType)
	return appendNested(b, func(m []byte) []byte { return appendReceipt(m, o.result, applied) })
}

// appendNested appends a length-prefixed message that fill encodes, with
// a one-byte length when it fits (receipts do) and the exact varint
// length otherwise, as deterministic marshalling writes it.
func appendNested(b []byte, fill func([]byte) []byte) []byte {
	at := len(b)
	b = append(b, 0)
	b = fill(b)
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	msg := append([]byte(nil), b[at+1:]...)
	return protowire.AppendBytes(b[:at], msg)
}

// appendReceipt encodes the fields of a Receipt, exactly as
// proto.MarshalOptions{Deterministic: true} encodes receiptProto(r,
// applied) (a test holds it to that).
func appendReceipt(b []byte, r engine.Receipt, applied uint64) []byte {
	if r.Tenant != "" {
		b = protowire.AppendTag(b, fieldReceiptTenant, protowire.BytesType)
		b = protowire.AppendString(b, r.Tenant)
	}
	if r.EventID != "" {
		b = protowire.AppendTag(b, fieldReceiptEventID, protowire.BytesType)
		b = protowire.AppendString(b, r.EventID)
	}
	b = protowire.AppendTag(b, fieldReceiptPartition, protowire.BytesType)
	if y := r.Partition.Year; y >= 0 && y <= 9999 {
		b = r.Partition.AppendText(append(b, 7))
	} else {
		b = protowire.AppendString(b, r.Partition.String())
	}
	if r.LeafIndex != 0 {
		b = protowire.AppendTag(b, fieldReceiptLeafIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, r.LeafIndex)
	}
	b = protowire.AppendTag(b, fieldReceiptLeafHash, protowire.BytesType)
	b = protowire.AppendBytes(b, r.LeafHash[:])
	if r.TreeSize != 0 {
		b = protowire.AppendTag(b, fieldReceiptTreeSize, protowire.VarintType)
		b = protowire.AppendVarint(b, r.TreeSize)
	}
	b = protowire.AppendTag(b, fieldReceiptSequencerTime, protowire.BytesType)
	b = appendNested(b, func(m []byte) []byte {
		if s := r.SequencerTime.Unix(); s != 0 {
			m = protowire.AppendTag(m, fieldTimestampSeconds, protowire.VarintType)
			m = protowire.AppendVarint(m, uint64(s))
		}
		if ns := r.SequencerTime.Nanosecond(); ns != 0 {
			m = protowire.AppendTag(m, fieldTimestampNanos, protowire.VarintType)
			m = protowire.AppendVarint(m, uint64(ns))
		}
		return m
	})
	if r.Duplicate {
		b = protowire.AppendTag(b, fieldReceiptDuplicate, protowire.VarintType)
		b = append(b, 1)
	}
	if applied != 0 {
		b = protowire.AppendTag(b, fieldReceiptAppliedIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, applied)
	}
	return b
}
