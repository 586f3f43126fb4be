package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A spool segment is a header followed by records:
//
//	magic   8 bytes  "TRLSPL01"
//	record  length  uint32 big-endian, 1..maxSpoolRecord
//	        crc     uint32 big-endian, CRC-32C of length and payload
//	        payload the event's deterministic protobuf encoding
//
// The checksum covers the length too, so a corrupted length is caught
// rather than read as a shorter or longer record.
const (
	spoolMagic      = "TRLSPL01"
	spoolHeaderSize = len(spoolMagic)
	recordHeader    = 8
	// maxSpoolRecord bounds one record. Events are at most the batch byte
	// limit, far below this; a larger length is corruption.
	maxSpoolRecord = 64 << 20
)

// Spool damage found when a segment is read back.
var (
	// ErrSpoolTorn marks a segment whose tail is an incomplete record: a
	// write cut short by a crash. That record's Append never returned, so
	// no caller was told it was taken; the records before it are intact.
	ErrSpoolTorn = errors.New("client: spool segment ends in a torn record")
	// ErrSpoolCorrupt marks a segment with damaged bytes before its end:
	// a record that fsync had made durable no longer reads back. New
	// refuses to start over it (see Config.SpoolDir).
	ErrSpoolCorrupt = errors.New("client: spool segment is corrupt")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends one record holding payload to b.
func appendRecord(b, payload []byte) []byte {
	var h [recordHeader]byte
	binary.BigEndian.PutUint32(h[:4], uint32(len(payload)))
	crc := crc32.Update(0, castagnoli, h[:4])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.BigEndian.PutUint32(h[4:], crc)
	b = append(b, h[:]...)
	return append(b, payload...)
}

// decodeSegment reads the records of a whole segment file. It returns
// every record before the first damage, the length of that intact prefix,
// and, when there is damage, an error wrapping ErrSpoolTorn or
// ErrSpoolCorrupt that names the offset. Records alias b.
//
// Torn means the damage can only be an interrupted final write: the file
// ends inside a record's header or payload, or everything from the
// offset on is zero (a file system may extend a file before its data
// lands). Anything else is corrupt.
func decodeSegment(b []byte) (records [][]byte, valid int, err error) {
	if len(b) < spoolHeaderSize {
		if string(b) == spoolMagic[:len(b)] {
			return nil, 0, fmt.Errorf("%w: header cut at %d bytes", ErrSpoolTorn, len(b))
		}
		return nil, 0, fmt.Errorf("%w: not a spool segment (bad magic)", ErrSpoolCorrupt)
	}
	if string(b[:spoolHeaderSize]) != spoolMagic {
		return nil, 0, fmt.Errorf("%w: not a spool segment (bad magic)", ErrSpoolCorrupt)
	}
	off := spoolHeaderSize
	for off < len(b) {
		rec, n, err := decodeRecord(b[off:])
		if err != nil {
			return records, off, fmt.Errorf("offset %d (after %d intact records): %w", off, len(records), err)
		}
		records = append(records, rec)
		off += n
	}
	return records, off, nil
}

// decodeRecord reads the record at the start of b and returns its payload
// and encoded size.
func decodeRecord(b []byte) ([]byte, int, error) {
	if allZero(b) {
		return nil, 0, fmt.Errorf("%w: %d zero bytes", ErrSpoolTorn, len(b))
	}
	if len(b) < recordHeader {
		return nil, 0, fmt.Errorf("%w: record header cut at %d of %d bytes", ErrSpoolTorn, len(b), recordHeader)
	}
	n := binary.BigEndian.Uint32(b[:4])
	if n == 0 || n > maxSpoolRecord {
		return nil, 0, fmt.Errorf("%w: record length %d out of range", ErrSpoolCorrupt, n)
	}
	end := recordHeader + int(n)
	crc := crc32.Update(0, castagnoli, b[:4])
	if end > len(b) {
		return nil, 0, fmt.Errorf("%w: record of %d bytes cut at %d", ErrSpoolTorn, n, len(b)-recordHeader)
	}
	crc = crc32.Update(crc, castagnoli, b[recordHeader:end])
	if want := binary.BigEndian.Uint32(b[4:8]); crc != want {
		return nil, 0, fmt.Errorf("%w: record checksum %08x, want %08x", ErrSpoolCorrupt, crc, want)
	}
	return b[recordHeader:end], end, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
