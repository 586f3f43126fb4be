package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics. Each Server has its own
// registry, so that several servers (tests, or nodes in one process) never
// share or collide in a global one.
type metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec   // method, code
	requestTime   *prometheus.HistogramVec // method
	inFlight      *prometheus.GaugeVec     // method
	appended      *prometheus.CounterVec   // result: appended, duplicate, rejected
	batchSize     prometheus.Histogram
	commitSeconds prometheus.Histogram
	proofSeconds  *prometheus.HistogramVec // kind
	auditWritten  prometheus.Counter
	auditDropped  prometheus.Counter
	auditQueued   prometheus.GaugeFunc
	tailActive    prometheus.Gauge
	tailCut       prometheus.Counter
	witnessed     *prometheus.CounterVec // witness, result
}

func newMetrics(c Cluster, auditQueueLen func() float64) *metrics {
	latency := prometheus.ExponentialBuckets(0.0005, 2, 16) // 0.5 ms .. 16 s
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_rpc_requests_total", Help: "RPCs handled, by method and gRPC status code.",
		}, []string{"method", "code"}),
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trail_rpc_duration_seconds", Help: "RPC latency by method (streams: lifetime).", Buckets: latency,
		}, []string{"method"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "trail_rpc_in_flight", Help: "RPCs being handled, by method.",
		}, []string{"method"}),
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_append_events_total", Help: "Events submitted, by result: appended, duplicate (already in the log) or rejected.",
		}, []string{"result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trail_append_batch_events", Help: "Events per append call handed to the cluster.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8), // 1 .. 16384
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trail_append_commit_seconds", Help: "Time from handing a batch to the cluster until it is committed and applied.", Buckets: latency,
		}),
		proofSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trail_proof_seconds", Help: "Time to build and sign a proof, by kind.", Buckets: latency,
		}, []string{"kind"}),
		auditWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_access_audit_written_total", Help: "Access-audit events appended to the system tenant.",
		}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_access_audit_dropped_total", Help: "Access-audit events dropped because the queue was full or the cluster refused them.",
		}),
		auditQueued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "trail_access_audit_queued", Help: "Access-audit events waiting to be appended.",
		}, auditQueueLen),
		tailActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trail_tail_subscribers", Help: "Open Tail streams.",
		}),
		tailCut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_tail_cut_total", Help: "Tail streams cut because the consumer fell behind.",
		}),
		witnessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_witness_submissions_total",
			Help: "Checkpoints submitted to witnesses, by witness and result: cosigned, conflict (409, retried), inconsistent (422 or the witness is ahead: a fork or rollback), failed.",
		}, []string{"witness", "result"}),
	}
	m.reg.MustRegister(
		m.requests, m.requestTime, m.inFlight, m.appended, m.batchSize, m.commitSeconds, m.proofSeconds,
		m.auditWritten, m.auditDropped, m.auditQueued, m.tailActive, m.tailCut, m.witnessed,
		clusterCollector{c},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// clusterCollector exports the node's Raft state at scrape time, reading
// the status once per scrape rather than keeping gauges in step.
type clusterCollector struct{ c Cluster }

var (
	raftStateDesc = prometheus.NewDesc("trail_raft_state",
		"1 for the node's current Raft state, 0 for the others.", []string{"state"}, nil)
	raftIndexDesc = prometheus.NewDesc("trail_raft_index",
		"Raft indexes of this node: applied (engine), commit and last_log.", []string{"kind"}, nil)
	raftStates = []string{"Leader", "Follower", "Candidate", "Shutdown"}
)

func (cc clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- raftStateDesc
	ch <- raftIndexDesc
}

func (cc clusterCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Status()
	for _, s := range raftStates {
		v := 0.0
		if st.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(raftStateDesc, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(raftIndexDesc, prometheus.GaugeValue, float64(cc.c.AppliedIndex()), "applied")
	ch <- prometheus.MustNewConstMetric(raftIndexDesc, prometheus.GaugeValue, float64(st.CommitIndex), "commit")
	ch <- prometheus.MustNewConstMetric(raftIndexDesc, prometheus.GaugeValue, float64(st.LastLogIndex), "last_log")
}
