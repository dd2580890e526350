package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Metrics collects counters and gauges and serves them in the Prometheus
// text exposition format. It is small on purpose: a handful of series do
// not justify the client library's dependency tree.
type Metrics struct {
	mu       sync.Mutex
	counters map[string]*series // guarded by mu
	gauges   map[string]gauge   // guarded by mu
}

type series struct {
	help   string
	values map[string]float64 // rendered label set -> value
}

type gauge struct {
	help string
	read func() map[string]float64 // label set -> value, read at scrape time
}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics {
	return &Metrics{counters: map[string]*series{}, gauges: map[string]gauge{}}
}

// Add adds v to the counter name with the given label pairs.
func (m *Metrics) Add(name, help string, v float64, labels ...string) {
	key := renderLabels(labels)
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.counters[name]
	if s == nil {
		s = &series{help: help, values: map[string]float64{}}
		m.counters[name] = s
	}
	s.values[key] += v
}

// Gauge registers a gauge whose values are read when scraped.
func (m *Metrics) Gauge(name, help string, read func() map[string]float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gauges[name] = gauge{help: help, read: read}
}

// Label renders one label set for a Gauge reader's map.
func Label(pairs ...string) string { return renderLabels(pairs) }

func renderLabels(pairs []string) string {
	if len(pairs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(pairs[i])
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(pairs[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// ObserveRequest counts one HTTP request.
func (m *Metrics) ObserveRequest(method string, status int, d time.Duration) {
	code := strconv.Itoa(status)
	m.Add("tocsin_http_requests_total", "HTTP requests served, by method and status.", 1, "method", method, "code", code)
	m.Add("tocsin_http_request_seconds_total", "Time spent serving HTTP requests.", d.Seconds(), "method", method)
}

// Filed counts an accepted filing.
func (m *Metrics) Filed(emergency bool) {
	kind := "ordinary"
	if emergency {
		kind = "emergency"
	}
	m.Add("tocsin_filings_total", "Broadcasts accepted, by kind.", 1, "kind", kind)
}

// Refused counts a filing refused with code.
func (m *Metrics) Refused(code tocsin.Code) {
	m.Add("tocsin_filings_refused_total", "Filings refused, by error code.", 1, "code", string(code))
}

func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var b strings.Builder
	m.mu.Lock()
	for _, name := range sortedKeys(m.counters) {
		s := m.counters[name]
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", name, s.help, name)
		for _, k := range sortedKeys(s.values) {
			fmt.Fprintf(&b, "%s%s %s\n", name, k, strconv.FormatFloat(s.values[k], 'g', -1, 64))
		}
	}
	gauges := make(map[string]gauge, len(m.gauges))
	for k, v := range m.gauges {
		gauges[k] = v
	}
	m.mu.Unlock()
	// Gauge readers may take locks of their own; call them unlocked.
	for _, name := range sortedKeys(gauges) {
		g := gauges[name]
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, g.help, name)
		values := g.read()
		for _, k := range sortedKeys(values) {
			fmt.Fprintf(&b, "%s%s %s\n", name, k, strconv.FormatFloat(values[k], 'g', -1, 64))
		}
	}
	_, _ = w.Write([]byte(b.String()))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
