// Package metrics is what Tocsin tells Prometheus: every series the
// coordinator exports, declared in one place with its help text, served in
// the standard exposition format on /metrics.
//
// A Metrics owns its registry (never the global one), so two coordinators
// in one test process do not share counters, and a series is added here,
// with a typed method, rather than named by string at the call site. The
// alert rules in deploy/prometheus/alerts.yml refer to these names; a test
// fails when one of them is not exported.
//
// Every method is safe for concurrent use, and a nil *Metrics records
// nothing, so a test or tool that wires no metrics need not make one.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Buckets are the histogram bounds in seconds for every latency Tocsin
// measures. They span 1 ms (a filing's fsync on a quiet disk) to 60 s (a
// provider long gone), dense where the emergency deadline's few seconds
// matter; anything slower lands in +Inf, which is itself the alarm.
var Buckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Kinds of filing, the kind label's values.
const (
	KindEmergency = "emergency"
	KindOrdinary  = "ordinary"
)

func kind(emergency bool) string {
	if emergency {
		return KindEmergency
	}
	return KindOrdinary
}

// methods bounds the HTTP method label: a client may send any token as a
// method, and each distinct one would otherwise be a new series.
var methods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true,
	http.MethodPut: true, http.MethodPatch: true, http.MethodDelete: true,
	http.MethodOptions: true, http.MethodConnect: true, http.MethodTrace: true,
}

// Method returns the method label for an HTTP method: the method itself
// if it is a standard one, else "other".
func Method(m string) string {
	if methods[m] {
		return m
	}
	return "other"
}

// Metrics holds Tocsin's series and the registry that serves them. Make
// one with New.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	filings       *prometheus.CounterVec
	refused       *prometheus.CounterVec
	published     prometheus.Counter
	receipts      *prometheus.CounterVec
	releases      prometheus.Counter
	loopUp        *prometheus.GaugeVec
	loopRestarts  *prometheus.CounterVec
	filingDurable *prometheus.HistogramVec
	publish       *prometheus.HistogramVec
	receive       *prometheus.HistogramVec
	duplicateAcks prometheus.Counter
	deadLetters   *prometheus.CounterVec

	outboxBacklog, emergencyLate, natsConnected    *funcGauge
	outboxOldestAge, relayLastProgress, receiptLag *funcGauge
	ready, storeWritable, calendarDaysUntilRefusal *funcGauge
	providerLastSeen                               *funcGaugeVec
}

// New returns a Metrics with every Tocsin series and the Go runtime and
// process collectors registered.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: Buckets}, labels)
		m.reg.MustRegister(h)
		return h
	}
	gauge := func(name, help string) *funcGauge {
		g := &funcGauge{desc: prometheus.NewDesc(name, help, nil, nil)}
		m.reg.MustRegister(g)
		return g
	}

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	m.httpRequests = counterVec("tocsin_http_requests_total", "HTTP requests served, by method and status.", "method", "code")
	m.httpDuration = histogram("tocsin_http_request_duration_seconds", "Time spent serving HTTP requests, by method.", "method")
	m.filings = counterVec("tocsin_filings_total", "Broadcasts accepted, by kind.", "kind")
	m.refused = counterVec("tocsin_filings_refused_total", "Filings refused, by error code.", "code")
	m.published = counter("tocsin_dispatches_published_total", "Dispatches acknowledged by JetStream.")
	m.receipts = counterVec("tocsin_receipts_total", "Receipts applied, by provider and status.", "provider", "status")
	m.releases = counter("tocsin_releases_total", "Scheduled broadcasts released.")

	m.loopUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tocsin_loop_up",
		Help: "1 while a supervised background loop is running, 0 while it is down or waiting to restart.",
	}, []string{"loop"})
	m.reg.MustRegister(m.loopUp)
	m.loopRestarts = counterVec("tocsin_loop_restarts_total", "Restarts of a supervised background loop after it failed.", "loop")

	m.filingDurable = histogram("tocsin_filing_durable_seconds", "From a filing request's arrival to its transaction on disk, by kind.", "kind")
	m.publish = histogram("tocsin_dispatch_publish_seconds", "From a dispatch on disk to JetStream's acknowledgement, by provider.", "provider")
	m.receive = histogram("tocsin_dispatch_receive_seconds", "From a dispatch published to the provider's first receipt, by provider.", "provider")
	m.duplicateAcks = counter("tocsin_dispatch_duplicate_acks_total", "Publishes JetStream acknowledged as duplicates of a message this store never published; each is retried under a fresh id.")
	m.deadLetters = counterVec("tocsin_dead_letters_total", "Dispatches that exhausted their deliveries, by provider.", "provider")

	m.outboxBacklog = gauge("tocsin_outbox_backlog", "Dispatches committed but not yet acknowledged by JetStream.")
	m.emergencyLate = gauge("tocsin_emergency_dispatches_late", "Emergency dispatches a provider has not received within --emergency-deadline.")
	m.natsConnected = gauge("tocsin_nats_connected", "1 while the coordinator is connected to NATS.")
	m.outboxOldestAge = gauge("tocsin_outbox_oldest_age_seconds", "Age of the oldest dispatch in the outbox; 0 when it is empty. Growing means the relay is not progressing.")
	m.relayLastProgress = gauge("tocsin_relay_last_progress_seconds", "Seconds since the outbox relay last made progress.")
	m.receiptLag = gauge("tocsin_receipt_lag_seconds", "How far behind the receipt consumer is: age of the oldest receipt not yet applied.")
	m.ready = gauge("tocsin_ready", "1 while /readyz answers ready, 0 while it answers degraded.")
	m.storeWritable = gauge("tocsin_store_writable", "1 while the store accepts writes, 0 while it does not (disk full, I/O error, read-only).")
	m.calendarDaysUntilRefusal = gauge("tocsin_calendar_days_until_refusal", "Days until the first filing date refused for want of a loaded working-day calendar.")
	m.providerLastSeen = &funcGaugeVec{desc: prometheus.NewDesc("tocsin_provider_last_seen_seconds",
		"Seconds since each provider was last seen pulling or reporting.", []string{"provider"}, nil)}
	m.reg.MustRegister(m.providerLastSeen)
	return m
}

// Handler serves the registry on /metrics. A gauge that fails to read is
// left out of that scrape rather than failing it, so one broken reading
// cannot hide the others.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // counts the handler's own errors
	})
}

// Gatherer is the registry, for tests that read series without HTTP.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// ObserveRequest counts one HTTP request and its duration.
func (m *Metrics) ObserveRequest(method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	method = Method(method)
	m.httpRequests.WithLabelValues(method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(method).Observe(d.Seconds())
}

// Filed counts an accepted filing.
func (m *Metrics) Filed(emergency bool) {
	if m == nil {
		return
	}
	m.filings.WithLabelValues(kind(emergency)).Inc()
}

// Refused counts a filing refused with code.
func (m *Metrics) Refused(code tocsin.Code) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(string(code)).Inc()
}

// Published counts n dispatches JetStream acknowledged.
func (m *Metrics) Published(n int) {
	if m == nil {
		return
	}
	m.published.Add(float64(n))
}

// Receipt counts one receipt applied.
func (m *Metrics) Receipt(provider string, status tocsin.DeliveryStatus) {
	if m == nil {
		return
	}
	m.receipts.WithLabelValues(provider, string(status)).Inc()
}

// Released counts n scheduled broadcasts released.
func (m *Metrics) Released(n int) {
	if m == nil {
		return
	}
	m.releases.Add(float64(n))
}

// LoopUp records whether the supervised loop named loop is running.
func (m *Metrics) LoopUp(loop string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.loopUp.WithLabelValues(loop).Set(v)
}

// LoopRestarted counts one restart of the supervised loop named loop.
func (m *Metrics) LoopRestarted(loop string) {
	if m == nil {
		return
	}
	m.loopRestarts.WithLabelValues(loop).Inc()
}

// ObserveFilingDurable records how long a filing took from its request's
// arrival to its transaction being on disk.
func (m *Metrics) ObserveFilingDurable(emergency bool, d time.Duration) {
	if m == nil {
		return
	}
	m.filingDurable.WithLabelValues(kind(emergency)).Observe(d.Seconds())
}

// ObservePublished records how long a dispatch to provider took from being
// on disk to JetStream's acknowledgement.
func (m *Metrics) ObservePublished(provider string, d time.Duration) {
	if m == nil {
		return
	}
	m.publish.WithLabelValues(provider).Observe(d.Seconds())
}

// ObserveReceived records how long a dispatch took from being published to
// provider's first receipt for it.
func (m *Metrics) ObserveReceived(provider string, d time.Duration) {
	if m == nil {
		return
	}
	m.receive.WithLabelValues(provider).Observe(d.Seconds())
}

// DuplicateAck counts a publish JetStream acknowledged as a duplicate of a
// message this store had not published.
func (m *Metrics) DuplicateAck() {
	if m == nil {
		return
	}
	m.duplicateAcks.Inc()
}

// DeadLetter counts a dispatch to provider that exhausted its deliveries.
func (m *Metrics) DeadLetter(provider string) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(provider).Inc()
}

// The setters below give a gauge the function it is read from at scrape
// time; they are called once, at wiring time, by whoever owns the value.
// Until its function is set, a gauge is left out of the exposition, so an
// unwired gauge can neither raise a false alarm (tocsin_ready 0) nor claim
// health it does not know (tocsin_store_writable 1). A later call replaces
// the function. The functions are called from scrapes, concurrently with
// everything else, and must not block for long.

// SetOutboxBacklog sets the reader of tocsin_outbox_backlog: dispatches
// committed but not yet acknowledged.
func (m *Metrics) SetOutboxBacklog(fn func() float64) {
	m.set(func(m *Metrics) *funcGauge { return m.outboxBacklog }, fn)
}

// SetEmergencyLate sets the reader of tocsin_emergency_dispatches_late.
func (m *Metrics) SetEmergencyLate(fn func() float64) {
	m.set(func(m *Metrics) *funcGauge { return m.emergencyLate }, fn)
}

// SetNATSConnected sets the reader of tocsin_nats_connected: 1 connected,
// 0 not.
func (m *Metrics) SetNATSConnected(fn func() float64) {
	m.set(func(m *Metrics) *funcGauge { return m.natsConnected }, fn)
}

// SetOutboxOldestAge sets the reader of tocsin_outbox_oldest_age_seconds:
// the age in seconds of the oldest outbox entry, 0 when the outbox is
// empty.
func (m *Metrics) SetOutboxOldestAge(fn func() float64) {
	m.set(func(m *Metrics) *funcGauge { return m.outboxOldestAge }, fn)
}

// SetRelayLastProgress sets the reader of
// tocsin_relay_last_progress_seconds: seconds since the relay last made
// progress.
func (m *Metrics) SetRelayLastProgress(fn func() float64) {
	m.set(func(m *Metrics) *funcGauge { return m.relayLastProgress }, fn)
}

// SetReceiptLag sets the reader of tocsin_receipt_lag_seconds.
func (m *Metrics) SetReceiptLag(fn func() float64) {
	m.set(func(m *Metrics) *funcGauge { return m.receiptLag }, fn)
}

// SetReady sets the reader of tocsin_ready: 1 ready, 0 degraded.
func (m *Metrics) SetReady(fn func() float64) {
	m.set(func(m *Metrics) *funcGauge { return m.ready }, fn)
}

// SetStoreWritable sets the reader of tocsin_store_writable: 1 writable,
// 0 not.
func (m *Metrics) SetStoreWritable(fn func() float64) {
	m.set(func(m *Metrics) *funcGauge { return m.storeWritable }, fn)
}

// SetCalendarDaysUntilRefusal sets the reader of
// tocsin_calendar_days_until_refusal: days from today until the first
// filing date that would be refused for want of a calendar year.
func (m *Metrics) SetCalendarDaysUntilRefusal(fn func() float64) {
	m.set(func(m *Metrics) *funcGauge { return m.calendarDaysUntilRefusal }, fn)
}

// SetProviderLastSeen sets the reader of
// tocsin_provider_last_seen_seconds: seconds since each provider (the
// map's keys) was last seen.
func (m *Metrics) SetProviderLastSeen(fn func() map[string]float64) {
	if m == nil {
		return
	}
	m.providerLastSeen.fn.Store(&fn)
}

// set stores fn in the gauge pick chooses; pick runs only on a non-nil m.
func (m *Metrics) set(pick func(*Metrics) *funcGauge, fn func() float64) {
	if m == nil {
		return
	}
	pick(m).fn.Store(&fn)
}

// funcGauge is a gauge read from a function that is set after the gauge is
// registered; unset, it exports nothing.
type funcGauge struct {
	desc *prometheus.Desc
	fn   atomic.Pointer[func() float64]
}

func (g *funcGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *funcGauge) Collect(ch chan<- prometheus.Metric) {
	if fn := g.fn.Load(); fn != nil {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, (*fn)())
	}
}

// funcGaugeVec is a funcGauge with one label, read as a map from the
// label's value to the gauge's.
type funcGaugeVec struct {
	desc *prometheus.Desc
	fn   atomic.Pointer[func() map[string]float64]
}

func (g *funcGaugeVec) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *funcGaugeVec) Collect(ch chan<- prometheus.Metric) {
	fn := g.fn.Load()
	if fn == nil {
		return
	}
	for label, v := range (*fn)() {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, label)
	}
}
