package bundle

import (
	"encoding/hex"
	"fmt"

	"google.golang.org/protobuf/proto"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
	"github.com/trailaudit/trail/shred"
)

// opening checks an opening line against the sealed entry right before
// it: an opened payload must open with the key given, to exactly what the
// entry's leaf hash covers; an erased one must at least be sealed (a
// server cannot claim an erasure of a clear entry).
func (s *verification) opening(line []byte) error {
	var o Opening
	if err := decodeLine(line, &o); err != nil {
		return err
	}
	switch {
	case s.hdr.Format != Format:
		return failf(ErrMalformed, "an opening line in a %s bundle", s.hdr.Format)
	case len(s.sealed) == 0 || s.run == nil || o.Partition != s.run.part.Partition || o.LeafIndex != s.sealedLeaf:
		return failf(ErrMalformed, "the opening of %s/%d does not follow that sealed entry", o.Partition, o.LeafIndex)
	}
	sealed := s.sealed
	s.sealed = s.sealed[:0] // one opening per entry
	if o.State != OpeningErased && o.State != OpeningOpened {
		return failf(ErrMalformed, "opening state %q, want %q or %q", o.State, OpeningOpened, OpeningErased)
	}
	en := new(trailv1.Entry)
	if err := proto.Unmarshal(sealed, en); err != nil {
		return failf(ErrEntry, "the entry bytes do not decode as a trail.v1.Entry: %v", err)
	}
	switch o.State {
	case OpeningErased:
		if len(o.Key) != 0 {
			return failf(ErrMalformed, "the erased payload of %s/%d comes with a key", o.Partition, o.LeafIndex)
		}
		s.rep.Erased++
		if s.erasedKeys == nil {
			s.erasedKeys = make(map[string]uint64)
		}
		s.erasedKeys[hex.EncodeToString(en.GetEvent().GetSealed().GetKeyId())]++
		return nil
	case OpeningOpened:
		if _, err := shred.Open(en.GetEvent(), o.Key); err != nil {
			return failf(ErrEntry, "leaf %d of %s: the opening key does not open its sealed payload: %v", o.LeafIndex, o.Partition, err)
		}
		s.rep.Opened++
		return nil
	}
	return nil
}

// Erasure records are Trail's own events (source_service trail, which
// producers may not use) of action subject.erased whose target is the
// erased data key (server/erasure.go).
const (
	erasureAction     = "subject.erased"
	erasureTargetType = "data_key"
	erasureSource     = "trail"
)

// noteErasureRecord remembers the key an erasure record in the bundle
// names.
func (s *verification) noteErasureRecord(f *entryFields) {
	if string(f.action) != erasureAction || string(f.targetType) != erasureTargetType || string(f.source) != erasureSource {
		return
	}
	if s.erasureRecords == nil {
		s.erasureRecords = make(map[string]bool)
	}
	s.erasureRecords[string(f.targetID)] = true
}

// matchErasures counts the "erased" openings whose erasure record is in
// the bundle. The others are the exporting server's word: a filtered
// export may leave the record out, so they are reported, not refused.
func (s *verification) matchErasures() {
	for key, n := range s.erasedKeys {
		if s.erasureRecords[key] {
			s.rep.ErasedRecorded += n
		}
	}
}

// Opening writes the opening of the sealed entry just written.
func (w *Writer) Opening(o Opening) error {
	switch {
	case w.run == nil || w.cur == nil || o.Partition != w.cur.Partition || w.run.next == 0 || o.LeafIndex != w.run.next-1:
		return fmt.Errorf("bundle: opening of %s/%d does not follow its entry", o.Partition, o.LeafIndex)
	case o.State == OpeningOpened && len(o.Key) == 0, o.State == OpeningErased && len(o.Key) != 0:
		return fmt.Errorf("bundle: opening of %s/%d: state %s with a key of %d bytes", o.Partition, o.LeafIndex, o.State, len(o.Key))
	case o.State != OpeningOpened && o.State != OpeningErased:
		return fmt.Errorf("bundle: opening state %q", o.State)
	}
	o.Type = TypeOpening
	return w.line(o)
}
