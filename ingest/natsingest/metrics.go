package natsingest

import "github.com/prometheus/client_golang/prometheus"

// Results a message is counted under.
const (
	resultAppended   = "appended"    // its event is new in the log
	resultDuplicate  = "duplicate"   // its event_id was logged before
	resultDeadLetter = "dead_letter" // stored on the dead-letter subject and terminated
	resultRetried    = "retried"     // handed back for redelivery
)

// metrics count what became of the messages fetched.
type metrics struct {
	messages    *prometheus.CounterVec // result
	deadLetters *prometheus.CounterVec // cause
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_nats_messages_total",
			Help: "Messages consumed from NATS JetStream, by result: appended, duplicate (acked, the event was logged before), dead_letter or retried (handed back for redelivery).",
		}, []string{"result"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_nats_dead_letters_total",
			Help: "Messages sent to the dead-letter subject, by cause.",
		}, []string{"cause"}),
	}
	for _, r := range []string{resultAppended, resultDuplicate, resultDeadLetter, resultRetried} {
		m.messages.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.messages, m.deadLetters} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
