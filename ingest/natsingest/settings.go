package natsingest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trailaudit/trail/engine/eventwire"
)

// AnyTenant in Settings.Tenants lets the consumer append to every tenant
// but the system tenant.
const AnyTenant = "*"

// Defaults of Settings fields left zero.
const (
	DefaultStream            = "TRAIL"
	DefaultSubject           = "trail.events.>"
	DefaultConsumer          = "traild"
	DefaultDeadLetterSubject = "trail.dead"
	DefaultBatch             = 256
	DefaultBatchBytes        = 4 << 20
	DefaultAckWait           = 30 * time.Second
)

// Settings are what an operator configures about the bus.
type Settings struct {
	// URL is the NATS server list, comma separated (nats://host:4222,
	// tls://host:4222).
	URL string
	// Stream is the JetStream stream the consumer reads. When it does not
	// exist it is created with Subjects and DeadLetterSubject, file
	// storage and the server's default limits.
	Stream string
	// Subjects filter the consumer: the subjects producers publish events
	// to (wildcards allowed).
	Subjects []string
	// Consumer is the durable pull consumer's name. Every node of a
	// cluster uses the same one and so shares its messages.
	Consumer string
	// DeadLetterSubject receives the messages that can never be appended.
	// A stream must store it (checked at start), and no subject of
	// Subjects may match it.
	DeadLetterSubject string
	// Tenants are the tenants events from the bus may be appended to,
	// or AnyTenant. The bus carries no API key, so this is its scope, as a
	// producer key's tenants are a producer's.
	Tenants []string
	// Batch is the most messages fetched and appended at once; BatchBytes
	// bounds their bytes (a larger single message is still taken alone).
	Batch      int
	BatchBytes int
	// AckWait is how long JetStream waits for an acknowledgement before it
	// redelivers a message.
	AckWait time.Duration
}

// withDefaults returns s with zero fields set to their defaults.
func (s Settings) withDefaults() Settings {
	if s.Stream == "" {
		s.Stream = DefaultStream
	}
	if len(s.Subjects) == 0 {
		s.Subjects = []string{DefaultSubject}
	}
	if s.Consumer == "" {
		s.Consumer = DefaultConsumer
	}
	if s.DeadLetterSubject == "" {
		s.DeadLetterSubject = DefaultDeadLetterSubject
	}
	if s.Batch == 0 {
		s.Batch = DefaultBatch
	}
	if s.BatchBytes == 0 {
		s.BatchBytes = DefaultBatchBytes
	}
	if s.AckWait == 0 {
		s.AckWait = DefaultAckWait
	}
	return s
}

// Check validates the settings with their defaults applied. Messages name
// the setting by its traild file key.
func (s Settings) Check() error {
	s = s.withDefaults()
	if s.URL == "" {
		return errors.New("nats.url is empty")
	}
	for _, n := range []struct{ key, v string }{{"nats.stream", s.Stream}, {"nats.consumer", s.Consumer}} {
		if !validName(n.v) {
			return fmt.Errorf("%s %q: want letters, digits, '-' or '_' (no spaces, '.', '*', '>' or path separators)", n.key, n.v)
		}
	}
	for _, sub := range s.Subjects {
		if err := checkSubject(sub, true); err != nil {
			return fmt.Errorf("nats.subjects: %w", err)
		}
	}
	if err := checkSubject(s.DeadLetterSubject, false); err != nil {
		return fmt.Errorf("nats.dead_letter_subject: %w", err)
	}
	for _, sub := range s.Subjects {
		if subjectMatches(sub, s.DeadLetterSubject) {
			// The consumer would read its own dead letters back.
			return fmt.Errorf("nats.dead_letter_subject %s is matched by nats.subjects %s", s.DeadLetterSubject, sub)
		}
	}
	if _, err := newScope(s.Tenants); err != nil {
		return err
	}
	switch {
	case s.Batch < 1:
		return fmt.Errorf("nats.batch %d: want at least 1", s.Batch)
	case s.BatchBytes < 1:
		return fmt.Errorf("nats.batch_max_bytes %d: want at least 1", s.BatchBytes)
	case s.AckWait < time.Second:
		return fmt.Errorf("nats.ack_wait %s: want at least 1s", s.AckWait)
	}
	return nil
}

// validName is JetStream's rule for stream and consumer names, kept
// stricter: names also appear in file names on the NATS server.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// checkSubject validates a subject: dot-separated non-empty tokens without
// whitespace; with wildcards, '*' and '>' only as whole tokens and '>'
// only last.
func checkSubject(sub string, wildcards bool) error {
	if sub == "" {
		return errors.New("empty subject")
	}
	toks := strings.Split(sub, ".")
	for i, tok := range toks {
		switch {
		case tok == "":
			return fmt.Errorf("subject %q has an empty token", sub)
		case strings.ContainsAny(tok, " \t\r\n"):
			return fmt.Errorf("subject %q contains whitespace", sub)
		case tok == "*" || tok == ">":
			if !wildcards {
				return fmt.Errorf("subject %q: no wildcards here", sub)
			}
			if tok == ">" && i != len(toks)-1 {
				return fmt.Errorf("subject %q: '>' must be the last token", sub)
			}
		case strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("subject %q: wildcards must be whole tokens", sub)
		}
	}
	return nil
}

// subjectMatches reports whether the literal subject matches filter.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || tok != "*" && tok != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

// ErrTenantNotAllowed is wrapped by the refusal of an event whose tenant
// is outside the consumer's scope.
var ErrTenantNotAllowed = errors.New("tenant not allowed on this bus")

// scope is the set of tenants the consumer appends to.
type scope struct {
	all     bool
	tenants map[string]bool
}

func newScope(tenants []string) (scope, error) {
	if len(tenants) == 0 {
		return scope{}, fmt.Errorf("nats.tenants is empty: list the tenants events from the bus may be appended to, or %q for all", AnyTenant)
	}
	sc := scope{tenants: make(map[string]bool, len(tenants))}
	for _, t := range tenants {
		if t == AnyTenant {
			sc.all = true
			continue
		}
		if t == eventwire.SystemTenant {
			return scope{}, fmt.Errorf("nats.tenants: %q is written by Trail only", t)
		}
		if err := eventwire.ValidateTenantID(t); err != nil {
			return scope{}, fmt.Errorf("nats.tenants: %w", err)
		}
		sc.tenants[t] = true
	}
	return sc, nil
}

func (sc scope) check(tenant string) error {
	switch {
	case tenant == eventwire.SystemTenant:
		return fmt.Errorf("%w: %q is written by Trail only", ErrTenantNotAllowed, tenant)
	case !sc.all && !sc.tenants[tenant]:
		return fmt.Errorf("%w: tenant %q is not in this consumer's tenants", ErrTenantNotAllowed, tenant)
	}
	return nil
}
