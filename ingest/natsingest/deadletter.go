package natsingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trailaudit/trail/engine"
)

// Headers of a dead letter. Its body is the original message's body, and
// it keeps the original's headers except JetStream's own (Nats-*).
const (
	// HeaderReason is why the message cannot be appended, in words.
	HeaderReason = "Trail-Dead-Letter-Reason"
	// HeaderCause is the reason's class, one of the Cause* values, for
	// tooling that routes dead letters.
	HeaderCause = "Trail-Dead-Letter-Cause"
	// HeaderSubject, HeaderStream and HeaderSequence locate the original
	// message.
	HeaderSubject  = "Trail-Original-Subject"
	HeaderStream   = "Trail-Original-Stream"
	HeaderSequence = "Trail-Original-Sequence"
)

// Values of HeaderCause.
const (
	CauseUndecodable = "undecodable"       // not an event in any encoding Trail reads
	CauseInvalid     = "invalid_event"     // an event, but not a valid one
	CauseTenant      = "unknown_tenant"    // a tenant outside the consumer's scope
	CauseConflict    = "event_id_conflict" // the event_id was logged with other content
	CauseTooLarge    = "too_large"         // the event exceeds the largest entry
	CauseOther       = "other"
)

// maxReasonLen bounds the reason header: a decoder's error can quote
// input, and headers should stay small.
const maxReasonLen = 1024

// publishTimeout bounds waiting for JetStream to store a dead letter.
const publishTimeout = 10 * time.Second

func causeOf(err error) string {
	switch {
	case errors.Is(err, ErrUndecodable):
		return CauseUndecodable
	case errors.Is(err, ErrTenantNotAllowed):
		return CauseTenant
	case errors.Is(err, engine.ErrEventIDConflict):
		return CauseConflict
	case errors.Is(err, engine.ErrEntryTooLarge):
		return CauseTooLarge
	case errors.Is(err, engine.ErrInvalidEvent):
		return CauseInvalid
	}
	return CauseOther
}

// headerValue makes err's text safe as a header value: one line of
// printable text, at most maxReasonLen bytes.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if len(s) > maxReasonLen {
		cut := maxReasonLen
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// deadLetterMsg is the dead letter of m for cause, and the id that
// deduplicates its publication: a message redelivered before its
// termination took effect yields one dead letter, not two.
func deadLetterMsg(subject string, m jetstream.Msg, cause error) (*nats.Msg, string) {
	out := nats.NewMsg(subject)
	out.Data = m.Data()
	for k, vs := range m.Headers() {
		// Nats-Msg-Id, Nats-Expected-* and the like are instructions to
		// the stream the original went to, not data.
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		out.Header[k] = append([]string(nil), vs...)
	}
	out.Header.Set(HeaderReason, headerValue(cause.Error()))
	out.Header.Set(HeaderCause, causeOf(cause))
	out.Header.Set(HeaderSubject, m.Subject())
	id := ""
	if md, err := m.Metadata(); err == nil {
		out.Header.Set(HeaderStream, md.Stream)
		out.Header.Set(HeaderSequence, strconv.FormatUint(md.Sequence.Stream, 10))
		id = fmt.Sprintf("trail-dead-letter:%s:%d", md.Stream, md.Sequence.Stream)
	}
	return out, id
}

// deadLetter publishes m's dead letter and, once JetStream has stored
// it, terminates m. If the dead letter cannot be stored, m is handed back
// for redelivery: a poison message is never dropped unrecorded.
func (in *Ingester) deadLetter(ctx context.Context, js jetstream.JetStream, m jetstream.Msg, cause error) {
	out, id := deadLetterMsg(in.cfg.DeadLetterSubject, m, cause)
	var opts []jetstream.PublishOpt
	if id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if _, err := js.PublishMsg(pctx, out, opts...); err != nil {
		in.log.Error("dead letter not stored; the message will be redelivered", "subject", m.Subject(),
			"dead_letter_subject", in.cfg.DeadLetterSubject, "err", err, "reason", cause)
		in.retry(ctx, []jetstream.Msg{m})
		return
	}
	in.metrics.messages.WithLabelValues(resultDeadLetter).Inc()
	in.metrics.deadLetters.WithLabelValues(causeOf(cause)).Inc()
	if err := m.TermWithReason(causeOf(cause)); err != nil {
		// Redelivered after AckWait and dead-lettered again; the
		// publication's id deduplicates it within the stream's window.
		in.log.Warn("terminate", "subject", m.Subject(), "err", err)
	}
	in.log.Warn("dead-lettered a message", "subject", m.Subject(), "cause", causeOf(cause), "reason", cause)
}
