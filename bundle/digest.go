package bundle

import (
	"encoding/binary"
	"hash"
)

// The manifest's digest covers every line before the manifest, each as a
// record in order. A line that is not an entry contributes its bytes
// ('L', length, bytes, newline included). An entry line contributes what
// it states rather than its ~800 bytes of JSON and base64: 'E', its
// partition, leaf index, pruned flag and leaf hash. That binds the line as
// firmly: the verifier accepts entry lines only in the one fixed layout
// (so partition, index, flag, hash and entry bytes determine the line),
// and it recomputes every stated leaf hash from the entry bytes (so the
// hash determines the bytes, SHA-256 being collision resistant). Pruned
// entries have no bytes; their stated hash is bound by the run proof. It
// saves hashing each entry twice, once for its leaf and once for the
// digest, which was a third of the verifier's time.
const (
	digestLine  = 'L'
	digestEntry = 'E'
)

// digestLineRecord feeds h the record of a non-entry line.
func digestLineRecord(h hash.Hash, line []byte) {
	var hdr [9]byte
	hdr[0] = digestLine
	binary.BigEndian.PutUint64(hdr[1:], uint64(len(line)))
	h.Write(hdr[:])
	h.Write(line)
}

// appendEntryRecord appends the digest record of an entry line to b.
func appendEntryRecord(b []byte, partition []byte, leaf uint64, pruned bool, leafHash *[32]byte) []byte {
	b = append(b, digestEntry, byte(len(partition)))
	b = append(b, partition...)
	b = binary.BigEndian.AppendUint64(b, leaf)
	flag := byte(0)
	if pruned {
		flag = 1
	}
	b = append(b, flag)
	return append(b, leafHash[:]...)
}
