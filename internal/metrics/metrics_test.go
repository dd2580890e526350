package metrics_test

import (
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tocsin-dev/tocsin/internal/metrics"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// scrape fetches /metrics from m's handler, as Prometheus would, and
// returns the raw text and its parsed families.
func scrape(t *testing.T, m *metrics.Metrics) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain") // the classic text format, which the parser reads
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, body)
	}
	return string(body), families
}

// sample finds the series of family name with exactly these labels.
func sample(families map[string]*dto.MetricFamily, name string, labels ...string) (*dto.Metric, bool) {
	mf := families[name]
	if mf == nil {
		return nil, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if maps.Equal(got, want) {
			return m, true
		}
	}
	return nil, false
}

// value is a counter's or gauge's value; ok is false if there is no such
// series.
func value(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	m, ok := sample(families, name, labels...)
	if !ok {
		return 0, false
	}
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

func wantValue(t *testing.T, families map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(families, name, labels...)
	if !ok {
		t.Errorf("no series %s%v", name, labels)
	} else if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// exercise touches every series once and wires every gauge, so all of
// them appear in a scrape; a series added to Metrics belongs here.
func exercise(m *metrics.Metrics) {
	m.ObserveRequest(http.MethodGet, 200, 3*time.Millisecond)
	m.Filed(true)
	m.Refused(tocsin.CodeTooLate)
	m.Published(1)
	m.Receipt("p1", tocsin.DeliveryDelivered)
	m.Released(1)
	m.LoopUp("relay", true)
	m.LoopRestarted("relay")
	m.ObserveFilingDurable(true, 2*time.Millisecond)
	m.ObservePublished("p1", 5*time.Millisecond)
	m.ObserveReceived("p1", 300*time.Millisecond)
	m.DuplicateAck()
	m.DeadLetter("p1")
	one := func() float64 { return 1 }
	m.SetOutboxBacklog(one)
	m.SetEmergencyLate(one)
	m.SetNATSConnected(one)
	m.SetOutboxOldestAge(one)
	m.SetRelayLastProgress(one)
	m.SetReceiptLag(one)
	m.SetReady(one)
	m.SetStoreWritable(one)
	m.SetCalendarDaysUntilRefusal(one)
	m.SetProviderLastSeen(func() map[string]float64 { return map[string]float64{"p1": 1} })
}

func TestCountersAndGauges(t *testing.T) {
	m := metrics.New()
	m.ObserveRequest(http.MethodPost, 201, time.Millisecond)
	m.ObserveRequest(http.MethodPost, 201, time.Millisecond)
	m.Filed(true)
	m.Filed(false)
	m.Filed(false)
	m.Refused(tocsin.CodeTooLate)
	m.Published(3)
	m.Published(2)
	m.Receipt("p1", tocsin.DeliveryDelivered)
	m.Released(4)
	m.LoopUp("relay", true)
	m.LoopUp("receipts", true)
	m.LoopUp("receipts", false)
	m.LoopRestarted("receipts")
	m.LoopRestarted("receipts")
	m.DuplicateAck()
	m.DeadLetter("p2")
	m.SetOutboxBacklog(func() float64 { return 7 })
	m.SetOutboxOldestAge(func() float64 { return 42.5 })
	m.SetRelayLastProgress(func() float64 { return 1.5 })
	m.SetReceiptLag(func() float64 { return 0.25 })
	m.SetReady(func() float64 { return 0 })
	m.SetStoreWritable(func() float64 { return 1 })
	m.SetCalendarDaysUntilRefusal(func() float64 { return 400 })
	m.SetProviderLastSeen(func() map[string]float64 { return map[string]float64{"p1": 3, "p2": 9} })

	_, f := scrape(t, m)
	wantValue(t, f, 2, "tocsin_http_requests_total", "method", "POST", "code", "201")
	wantValue(t, f, 1, "tocsin_filings_total", "kind", "emergency")
	wantValue(t, f, 2, "tocsin_filings_total", "kind", "ordinary")
	wantValue(t, f, 1, "tocsin_filings_refused_total", "code", "too_late")
	wantValue(t, f, 5, "tocsin_dispatches_published_total")
	wantValue(t, f, 1, "tocsin_receipts_total", "provider", "p1", "status", "delivered")
	wantValue(t, f, 4, "tocsin_releases_total")
	wantValue(t, f, 1, "tocsin_loop_up", "loop", "relay")
	wantValue(t, f, 0, "tocsin_loop_up", "loop", "receipts")
	wantValue(t, f, 2, "tocsin_loop_restarts_total", "loop", "receipts")
	wantValue(t, f, 1, "tocsin_dispatch_duplicate_acks_total")
	wantValue(t, f, 1, "tocsin_dead_letters_total", "provider", "p2")
	wantValue(t, f, 7, "tocsin_outbox_backlog")
	wantValue(t, f, 42.5, "tocsin_outbox_oldest_age_seconds")
	wantValue(t, f, 1.5, "tocsin_relay_last_progress_seconds")
	wantValue(t, f, 0.25, "tocsin_receipt_lag_seconds")
	wantValue(t, f, 0, "tocsin_ready")
	wantValue(t, f, 1, "tocsin_store_writable")
	wantValue(t, f, 400, "tocsin_calendar_days_until_refusal")
	wantValue(t, f, 3, "tocsin_provider_last_seen_seconds", "provider", "p1")
	wantValue(t, f, 9, "tocsin_provider_last_seen_seconds", "provider", "p2")
}

func TestMethodLabelIsBounded(t *testing.T) {
	m := metrics.New()
	for _, method := range []string{"BREW", "PROPFIND", "get", strings.Repeat("X", 1000)} {
		m.ObserveRequest(method, 405, time.Millisecond)
	}
	m.ObserveRequest(http.MethodDelete, 204, time.Millisecond)
	_, f := scrape(t, m)
	wantValue(t, f, 4, "tocsin_http_requests_total", "method", "other", "code", "405")
	wantValue(t, f, 1, "tocsin_http_requests_total", "method", "DELETE", "code", "204")
	if n := len(f["tocsin_http_requests_total"].GetMetric()); n != 2 {
		t.Errorf("%d request series, want 2 (DELETE and other)", n)
	}
	if h, ok := sample(f, "tocsin_http_request_duration_seconds", "method", "other"); !ok || h.GetHistogram().GetSampleCount() != 4 {
		t.Errorf("duration histogram for method other = %v, want 4 samples", h)
	}
}

func TestHistograms(t *testing.T) {
	m := metrics.New()
	m.ObserveFilingDurable(true, 3*time.Millisecond)
	m.ObserveFilingDurable(false, 2*time.Second)
	m.ObservePublished("p1", 20*time.Millisecond)
	m.ObservePublished("p1", 40*time.Millisecond)
	m.ObserveReceived("p2", 90*time.Second) // beyond the last bucket
	_, f := scrape(t, m)

	for _, c := range []struct {
		name   string
		labels []string
		count  uint64
		sum    float64
		le     float64 // a bound ...
		below  uint64  // ... and how many samples fall at or below it
	}{
		{"tocsin_filing_durable_seconds", []string{"kind", "emergency"}, 1, 0.003, 0.005, 1},
		{"tocsin_filing_durable_seconds", []string{"kind", "ordinary"}, 1, 2, 1, 0},
		{"tocsin_dispatch_publish_seconds", []string{"provider", "p1"}, 2, 0.06, 0.025, 1},
		{"tocsin_dispatch_receive_seconds", []string{"provider", "p2"}, 1, 90, 60, 0},
	} {
		s, ok := sample(f, c.name, c.labels...)
		if !ok {
			t.Errorf("no series %s%v", c.name, c.labels)
			continue
		}
		h := s.GetHistogram()
		if h.GetSampleCount() != c.count || !near(h.GetSampleSum(), c.sum) {
			t.Errorf("%s%v: count %d sum %v, want %d and %v", c.name, c.labels, h.GetSampleCount(), h.GetSampleSum(), c.count, c.sum)
		}
		var bounds []float64
		for _, b := range h.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) { // the exposition adds +Inf
				bounds = append(bounds, b.GetUpperBound())
			}
			if b.GetUpperBound() == c.le && b.GetCumulativeCount() != c.below {
				t.Errorf("%s%v: %d at or below %v, want %d", c.name, c.labels, b.GetCumulativeCount(), c.le, c.below)
			}
		}
		if !slices.Equal(bounds, metrics.Buckets) {
			t.Errorf("%s buckets = %v, want %v", c.name, bounds, metrics.Buckets)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// An unwired gauge is left out rather than reported as a 0 that would
// read as "not ready" or "store unwritable".
func TestUnsetGaugesAreAbsent(t *testing.T) {
	_, f := scrape(t, metrics.New())
	for _, name := range []string{
		"tocsin_ready", "tocsin_store_writable", "tocsin_outbox_oldest_age_seconds",
		"tocsin_relay_last_progress_seconds", "tocsin_receipt_lag_seconds",
		"tocsin_calendar_days_until_refusal", "tocsin_nats_connected", "tocsin_provider_last_seen_seconds",
	} {
		if mf := f[name]; mf != nil && len(mf.GetMetric()) > 0 {
			t.Errorf("unset gauge %s is exported: %v", name, mf)
		}
	}
}

func TestGaugeReadAtScrapeTime(t *testing.T) {
	m := metrics.New()
	var mu sync.Mutex
	age := 1.0
	m.SetOutboxOldestAge(func() float64 { mu.Lock(); defer mu.Unlock(); return age })
	_, f := scrape(t, m)
	wantValue(t, f, 1, "tocsin_outbox_oldest_age_seconds")
	mu.Lock()
	age = 31
	mu.Unlock()
	_, f = scrape(t, m)
	wantValue(t, f, 31, "tocsin_outbox_oldest_age_seconds")
	m.SetOutboxOldestAge(func() float64 { return 0 }) // a later wiring replaces the reader
	_, f = scrape(t, m)
	wantValue(t, f, 0, "tocsin_outbox_oldest_age_seconds")
}

func TestRuntimeCollectorsAndOwnRegistry(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.Published(1)
	_, f := scrape(t, b)
	wantValue(t, f, 0, "tocsin_dispatches_published_total") // b does not see a's count
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
		if f[name] == nil {
			t.Errorf("scrape lacks %s", name)
		}
	}
}

// Every series follows Prometheus's naming conventions (units, _total on
// counters, help text), as promtool check metrics would say, but for the
// exceptions listed with their reasons.
func TestLint(t *testing.T) {
	allowed := map[string]string{
		// A calendar counts whole days; seconds would be false precision,
		// and the name is what the calendar-gap alert is written against.
		"tocsin_calendar_days_until_refusal": `use base unit "seconds" instead of "days"`,
	}
	m := metrics.New()
	exercise(m)
	body, _ := scrape(t, m)
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "tocsin_") && allowed[p.Metric] != p.Text {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *metrics.Metrics
	exercise(m) // must not panic
}

func TestConcurrentUse(t *testing.T) {
	m := metrics.New()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				exercise(m)
			}
		})
	}
	for range 5 { // scrapes race the writers; scrape may fail the test, so it stays on this goroutine
		scrape(t, m)
	}
	wg.Wait()
	_, f := scrape(t, m)
	wantValue(t, f, 400, "tocsin_dispatch_duplicate_acks_total")
}
