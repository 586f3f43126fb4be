package eventwire

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// TestRandomEncodings complements FuzzScan with structure: random events
// (every field, empty and odd values, unknown fields), encoded canonically
// and then mutated at the field level, at the top or inside a nested
// message, and checked against Go's decoder and encoder.
func TestRandomEncodings(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		b := deterministic(t, randomEvent(rng))
		for range rng.IntN(4) {
			b = mutate(rng, b, 0)
		}
		checkAgreesWithGo(t, b)
	}
}

var randomWords = []string{"", "a", "b", "tenant-00", "user.login", "Zoë", "日本", "\x00", "ab\x00c", "zz", "a\u00ff", "0123456789abcdef0123456789abcdef"}

func randomString(rng *rand.Rand) string {
	if rng.IntN(3) == 0 {
		return ""
	}
	return randomWords[rng.IntN(len(randomWords))]
}

func randomStrings(rng *rand.Rand) []string {
	var out []string
	for range rng.IntN(4) {
		out = append(out, randomString(rng))
	}
	return out
}

func randomInt32(rng *rand.Rand) int32 {
	return []int32{0, 0, 1, 3, 9, 10, -1, 1 << 30, -1 << 31}[rng.IntN(9)]
}

func randomEvent(rng *rand.Rand) *trailv1.Event {
	e := &trailv1.Event{
		TenantId: randomString(rng), EventId: randomString(rng), Action: randomString(rng),
		Category: trailv1.Category(randomInt32(rng)), Outcome: trailv1.Outcome(randomInt32(rng)),
		SubjectId: randomString(rng), PiiFieldsAccessed: randomStrings(rng), PurposeCode: randomString(rng),
		SourceService: randomString(rng), TraceId: randomString(rng),
	}
	if rng.IntN(3) > 0 {
		e.Actor = &trailv1.Actor{Id: randomString(rng), Type: randomString(rng), Roles: randomStrings(rng), SessionId: randomString(rng)}
		maybeUnknown(rng, e.Actor.ProtoReflect())
	}
	if rng.IntN(3) > 0 {
		e.Target = &trailv1.Target{Type: randomString(rng), Id: randomString(rng)}
	}
	for range rng.IntN(3) {
		e.Changes = append(e.Changes, &trailv1.Change{Field: randomString(rng), Before: randomString(rng), After: randomString(rng)})
	}
	if rng.IntN(3) > 0 {
		e.OccurredAt = &timestamppb.Timestamp{Seconds: []int64{0, 1, -1, 1793520000, 1 << 62}[rng.IntN(5)], Nanos: randomInt32(rng)}
		maybeUnknown(rng, e.OccurredAt.ProtoReflect())
	}
	if n := rng.IntN(4); n > 0 {
		e.Attributes = map[string]string{}
		for range n {
			e.Attributes[randomString(rng)] = randomString(rng)
		}
	}
	if rng.IntN(4) == 0 {
		e.Sealed = &trailv1.SealedPayload{KeyId: []byte(randomString(rng)), Nonce: []byte(randomString(rng)), Ciphertext: []byte("\xff" + randomString(rng))}
		maybeUnknown(rng, e.Sealed.ProtoReflect())
	}
	maybeUnknown(rng, e.ProtoReflect())
	return e
}

// maybeUnknown gives a message unknown fields, some of them known numbers
// with the wrong wire type.
func maybeUnknown(rng *rand.Rand, m protoreflect.Message) {
	if rng.IntN(3) > 0 {
		return
	}
	var u []byte
	for range 1 + rng.IntN(2) {
		u = append(u, randomField(rng)...)
	}
	m.SetUnknown(u)
}

// randomField is a well-formed field with a random number and wire type.
func randomField(rng *rand.Rand) []byte {
	num := protowire.Number([]int{1, 2, 3, 4, 6, 9, 14, 15, 16, 99, 1000}[rng.IntN(11)])
	switch rng.IntN(5) {
	case 0:
		return varintField(num, []uint64{0, 1, 300, 1 << 40}[rng.IntN(4)])
	case 1:
		return protowire.AppendFixed32(protowire.AppendTag(nil, num, protowire.Fixed32Type), 7)
	case 2:
		return protowire.AppendFixed64(protowire.AppendTag(nil, num, protowire.Fixed64Type), 7)
	case 3:
		return cat(protowire.AppendTag(nil, num, protowire.StartGroupType), varintField(1, 1), protowire.AppendTag(nil, num, protowire.EndGroupType))
	default:
		return bytesField(num, []byte(randomString(rng)))
	}
}

// nested are the Event fields whose values are messages (or map entries).
var nested = map[protowire.Number]bool{6: true, 8: true, 11: true, 14: true, 15: true, 16: true}

// mutate changes one field of the message b, or recurses into a nested one.
func mutate(rng *rand.Rand, b []byte, depth int) []byte {
	fs, ok := trySplit(b)
	if !ok || len(fs) == 0 {
		return append(b, randomField(rng)...)
	}
	i := rng.IntN(len(fs))
	if depth == 0 && nested[fs[i].num] && rng.IntN(3) == 0 {
		_, _, n := protowire.ConsumeTag(fs[i].raw)
		if v, m := protowire.ConsumeBytes(fs[i].raw[n:]); m >= 0 {
			fs[i].raw = bytesField(fs[i].num, mutate(rng, v, 1))
			return join(fs)
		}
	}
	switch rng.IntN(10) {
	case 0: // swap with the next field
		if i+1 < len(fs) {
			fs[i], fs[i+1] = fs[i+1], fs[i]
		}
	case 1: // duplicate
		fs = append(fs[:i+1], fs[i:]...)
	case 2: // drop
		fs = append(fs[:i], fs[i+1:]...)
	case 3: // insert a random field
		fs = append(fs[:i], append([]rawField{{0, randomField(rng)}}, fs[i:]...)...)
	case 4: // lengthen the tag by one byte
		raw := fs[i].raw
		_, _, n := protowire.ConsumeTag(raw)
		tag, _ := protowire.ConsumeVarint(raw)
		fs[i].raw = cat(longVarint(tag, n+1), raw[n:])
	case 5: // truncate the whole message in this field
		return join(fs)[:len(join(fs[:i]))+rng.IntN(len(fs[i].raw))]
	case 6: // flip a byte
		raw := append([]byte{}, fs[i].raw...)
		raw[rng.IntN(len(raw))] ^= byte(1 << rng.IntN(8))
		fs[i].raw = raw
	case 7: // a string with invalid UTF-8 under this field's number
		fs[i].raw = bytesField(fs[i].num, []byte("x\xff"))
	case 8: // an empty length-delimited value under this field's number
		fs[i].raw = bytesField(fs[i].num, nil)
	default: // a zero varint under this field's number
		fs[i].raw = varintField(fs[i].num, 0)
	}
	return join(fs)
}

// trySplit is split for bytes that may be malformed.
func trySplit(b []byte) ([]rawField, bool) {
	var fs []rawField
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, false
		}
		fs = append(fs, rawField{num, b[:n+m]})
		b = b[n+m:]
	}
	return fs, true
}
