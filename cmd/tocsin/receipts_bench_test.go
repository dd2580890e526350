package main

// BenchmarkReceiptLag holds the receipt path to its target (issue 8, item
// 7): at 200 emergencies a second to two simulating providers, receipt
// lag p99 under 2 s and no false late flags.
//
//	go test -run '^$' -bench ReceiptLag -benchtime 1x ./cmd/tocsin/
//
// A real "tocsin demo --no-simulators" (startBenchServer) gets two
// reference providers, cmcc and cucc, run in this process exactly as the
// demo runs its simulators: provider.Connect and Run with
// provider.DefaultSimulation, which answers each dispatch with three
// receipts (received, sending, delivered). receiptClients files
// emergencies for 440100 (both providers) at a steady receiptRate for
// receiptFiling, each client taking the next slot of one shared schedule.
//
// Receipt lag is, for each receipt, from the provider having it stored
// (its "receipt sent" log line, written as its PubAck returns: the
// benchmark gives each provider a logger that keeps those times) to the
// coordinator having applied it (the receipt's entry in the broadcast's
// audit trail, read back afterwards through GET /api/v1/broadcasts/{id}).
// Both come from this machine's clock. The audit entry is stamped in the
// applying transaction, before its commit; a small sample (visibility)
// polled through the API while the load runs shows how much later a state
// is visible. The PubAck reaches the provider a little after the
// coordinator's consumer may already have the receipt, so a few lags come
// out below zero; they count as zero.
//
// The table also splits the way from a dispatch being queued to its
// received receipt applied, which is what the late check judges:
// queued → published (the relay), → taken on by the provider (its
// "dispatch received" line), → received receipt stored, → applied. The
// reference provider takes dispatches on one at a time, each after a
// synchronous receipt publish, so its time per dispatch caps its rate.
//
// A late flag is false when the provider had stored its received receipt
// within the deadline of the dispatch being queued: the coordinator just
// had not applied it yet. The coordinator runs with its default
// --emergency-deadline.
//
// One run takes 30-60 s: 25 s of filing, the drain, and reading the 5000
// filings back.
//
// With TOCSIN_BENCH_STRICT set, missing the target fails the benchmark.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/provider"
)

const (
	receiptRate     = 200 // emergencies a second
	receiptFiling   = 25 * time.Second
	receiptClients  = 8
	receiptDrainMax = 2 * time.Minute // longest the backlog may take to clear
	receiptDeadline = 30 * time.Second
	receiptTarget   = 2 * time.Second // p99
)

func BenchmarkReceiptLag(b *testing.B) {
	if testing.Short() {
		b.Skip("starts a demo coordinator, an embedded NATS server and two providers")
	}
	// One measurement per run whatever b.N, as BenchmarkEmergencyPath.
	dir := b.TempDir()
	base := startBenchServer(b, dir)
	tokens := map[string]string{}
	readJSONFile(b, filepath.Join(dir, "demo-tokens.json"), &tokens)
	var creds map[string]natsbus.Credentials
	readJSONFile(b, filepath.Join(dir, "demo-providers.json"), &creds)
	sent := &sentReceipts{at: map[receiptKey]time.Time{}, took: map[string]time.Time{}}
	// Client.Close drains in the background, so the coordinator can stop
	// under a provider still closing: not worth a warning.
	var quiet atomic.Bool
	defer quiet.Store(true)
	for _, id := range []string{"cmcc", "cucc"} {
		runBenchProvider(b, creds[id], sent, &quiet)
	}
	api := &benchAPI{base: base, bearer: "Bearer " + tokens["gd-met"], client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 2 * receiptClients, MaxIdleConnsPerHost: 2 * receiptClients},
	}}
	b.Cleanup(api.client.CloseIdleConnections)

	total := int(receiptRate * receiptFiling.Seconds())
	watch := newVisibility(api)
	filed, filingTime := fileSteadily(b, api, total, watch.sample)
	filingEnd := time.Now()
	b.Logf("filed %d emergencies in %s, until %s; waiting for them to complete", len(filed), filingTime.Round(time.Millisecond), filingEnd.Format("15:04:05.000"))
	api.awaitNoneDispatching(b, receiptDrainMax)

	seen := watch.stop(b)
	r := measureReceipts(b, api, filed, sent, seen)
	r.filingRate = float64(len(filed)) / filingTime.Seconds()
	r.drain = max(r.lastApplied.Sub(filingEnd), 0)
	fmt.Print(r.table()) // b.Log would trim it to ten lines
	b.ReportMetric(r.filingRate, "filings/s")
	b.ReportMetric(ms(r.p50), "lag-p50-ms")
	b.ReportMetric(ms(r.p99), "lag-p99-ms")
	b.ReportMetric(ms(r.max), "lag-max-ms")
	b.ReportMetric(r.drain.Seconds(), "drain-s")
	b.ReportMetric(ms(r.toApplied), "queued-to-received-p99-ms")
	b.ReportMetric(float64(r.falseLate), "false-late")
	b.ReportMetric(float64(r.notCompleted), "not-completed")
	missed := r.p99 >= receiptTarget || r.falseLate > 0 || r.notCompleted > 0 || r.unapplied > 0 ||
		r.filingRate < 0.95*receiptRate
	if missed && os.Getenv("TOCSIN_BENCH_STRICT") != "" {
		b.Errorf("receipts miss their target: p99 %s (< %s), %d false late flags, %d not completed, %d receipts unapplied, %.0f filings/s",
			r.p99, receiptTarget, r.falseLate, r.notCompleted, r.unapplied, r.filingRate)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// receiptKey names one receipt as the provider logs it and the audit
// trail records it.
type receiptKey struct {
	provider, broadcast, status string
	sent, delivered, failed     int
}

// sentReceipts keeps when each receipt was stored by its provider.
type sentReceipts struct {
	mu sync.Mutex
	at map[receiptKey]time.Time // guarded by mu
	// took is when the provider took each dispatch on, by "provider
	// broadcast": its "dispatch received" line, before its receipt.
	took map[string]time.Time // guarded by mu
}

func (s *sentReceipts) snapshot() map[receiptKey]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.at)
}

func (s *sentReceipts) taken() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.took)
}

// receiptLog is a slog handler that keeps the provider's "receipt sent"
// lines and drops everything else.
type receiptLog struct {
	provider string
	sent     *sentReceipts
	quiet    *atomic.Bool // once measured: shutting down warns of nothing
}

func (h receiptLog) Enabled(context.Context, slog.Level) bool { return true }
func (h receiptLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h receiptLog) WithGroup(string) slog.Handler            { return h }

func (h receiptLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "dispatch received" {
		var id string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "broadcast" {
				id = a.Value.String()
			}
			return a.Key != "broadcast"
		})
		h.sent.mu.Lock()
		if _, dup := h.sent.took[h.provider+" "+id]; !dup {
			h.sent.took[h.provider+" "+id] = r.Time
		}
		h.sent.mu.Unlock()
		return nil
	}
	if r.Message != "receipt sent" {
		if r.Level >= slog.LevelWarn && !h.quiet.Load() {
			// A provider in trouble shows in the figures; say why.
			fmt.Fprintf(os.Stderr, "%s %s %s: %s\n", r.Time.Format("15:04:05.000"), r.Level, h.provider, r.Message)
		}
		return nil
	}
	k := receiptKey{provider: h.provider}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "broadcast":
			k.broadcast = a.Value.String()
		case "status":
			k.status = a.Value.String()
		case "sent":
			k.sent = int(a.Value.Int64())
		case "delivered":
			k.delivered = int(a.Value.Int64())
		case "failed":
			k.failed = int(a.Value.Int64())
		}
		return true
	})
	h.sent.mu.Lock()
	if _, dup := h.sent.at[k]; !dup {
		h.sent.at[k] = r.Time
	}
	h.sent.mu.Unlock()
	return nil
}

// runBenchProvider runs the reference provider with the demo's simulation
// until the benchmark ends.
func runBenchProvider(b *testing.B, cr natsbus.Credentials, sent *sentReceipts, quiet *atomic.Bool) {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(receiptLog{provider: cr.Provider, sent: sent, quiet: quiet})
	client, err := provider.Connect(ctx, provider.Config{URL: cr.URL, ID: cr.Provider, Creds: cr.Creds, Log: log})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx, provider.DefaultSimulation.Handle) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("provider %s: %v", cr.Provider, err)
		}
		client.Close()
	})
}

// benchAPI calls the coordinator's API as gd-met.
type benchAPI struct {
	base, bearer string
	client       *http.Client
}

func (a *benchAPI) do(method, path, body string, want int, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", a.bearer)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, msg)
	}
	err = json.NewDecoder(resp.Body).Decode(out)
	_, _ = io.Copy(io.Discard, resp.Body)
	return err
}

// fileSteadily files n emergencies at receiptRate from receiptClients
// clients: filing i is due at start + i/receiptRate, and a client that
// falls behind files the next due one at once. It returns the ids and the
// time from the first slot until the last 201. filed is told of each.
func fileSteadily(b *testing.B, api *benchAPI, n int, filed func(i int, id string)) ([]string, time.Duration) {
	const body = `{"title":"台风红色预警","content":"【广东省气象局】台风“海燕”将于今夜登陆，请留在室内，远离海边。","scope":["440100"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"red"}}`
	interval := time.Second / receiptRate
	ids := make([]string, n)
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range receiptClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || firstErr.Load() != nil {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
				var out struct {
					ID string `json:"id"`
				}
				if err := api.do("POST", "/api/v1/broadcasts", body, http.StatusCreated, &out); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				ids[i] = out.ID
				filed(i, out.ID)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := firstErr.Load(); err != nil {
		b.Fatal(*err)
	}
	return ids, elapsed
}

// awaitNoneDispatching waits until no broadcast is still dispatching, or
// for limit; what is left undone shows in the figures.
func (a *benchAPI) awaitNoneDispatching(b *testing.B, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		var page struct {
			Broadcasts []json.RawMessage `json:"broadcasts"`
		}
		if err := a.do("GET", "/api/v1/broadcasts?status=dispatching&limit=1", "", http.StatusOK, &page); err != nil {
			b.Fatal(err)
		}
		if len(page.Broadcasts) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Logf("broadcasts still dispatching after %s", limit)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// receiptFigures are the benchmark's results.
type receiptFigures struct {
	filingRate            float64
	filings, notCompleted int
	receipts, unapplied   int // sent by the providers; of those, never applied
	p50, p99, max         time.Duration
	firstP99              time.Duration // of received receipts only: what lateness is judged by
	lastApplied           time.Time
	drain                 time.Duration // from the last filing's 201 to the last receipt applied
	late, falseLate       int
	early                 int // applied before the provider had its PubAck
	// From a dispatch queued (the filing) to its provider storing its
	// received receipt, and to the coordinator applying it: the second
	// is what the late check judges.
	toPublished time.Duration // p99, queued to JetStream's PubAck
	toTaken     time.Duration // p99, queued to the provider taking it on
	// takeOnMean is how long a provider spends on each dispatch before
	// it takes the next: from taking it on to its received receipt
	// stored. One at a time, it caps a provider at 1/takeOnMean a second.
	takeOnMean            time.Duration
	toProvider, toApplied time.Duration // p99
	toAppliedMax          time.Duration
	// The sample polled through the API: lag until a response showed
	// the state, and how much later that was than the audit trail says.
	sampled                int
	visibleP99, visibleMax time.Duration
	gapP50, gapMax         time.Duration
}

func (r receiptFigures) table() string {
	var s strings.Builder
	fmt.Fprintf(&s, "\nreceipt lag at %d emergencies/s to cmcc and cucc (provider stored → coordinator applied)\n", receiptRate)
	row := func(name, value string) { fmt.Fprintf(&s, "  %-36s %s\n", name, value) }
	row("filings/s achieved", fmt.Sprintf("%.1f (%d filings)", r.filingRate, r.filings))
	row("receipts sent / never applied", fmt.Sprintf("%d / %d", r.receipts, r.unapplied))
	row("receipt lag p50", fmt.Sprintf("%.1f ms", ms(r.p50)))
	row("receipt lag p99", fmt.Sprintf("%.1f ms  (target < %s)", ms(r.p99), receiptTarget))
	row("receipt lag max", fmt.Sprintf("%.1f ms", ms(r.max)))
	row("received-receipt lag p99", fmt.Sprintf("%.1f ms", ms(r.firstP99)))
	row("queued → published p99", fmt.Sprintf("%.1f ms", ms(r.toPublished)))
	row("queued → provider took it on p99", fmt.Sprintf("%.1f ms", ms(r.toTaken)))
	row("provider took on → received stored mean", fmt.Sprintf("%.2f ms  (one at a time: at most %.0f/s per provider)", ms(r.takeOnMean), 1/max(r.takeOnMean.Seconds(), 1e-9)))
	row("queued → provider received p99", fmt.Sprintf("%.1f ms", ms(r.toProvider)))
	row("queued → received applied p99 / max", fmt.Sprintf("%.1f / %.1f ms  (late after %s)", ms(r.toApplied), ms(r.toAppliedMax), receiptDeadline))
	row("applied before the provider's PubAck", fmt.Sprintf("%d (counted as 0 lag)", r.early))
	row("sampled: states polled via the API", fmt.Sprintf("%d, every %s", r.sampled, pollEvery))
	row("sampled: lag until visible p99 / max", fmt.Sprintf("%.1f / %.1f ms", ms(r.visibleP99), ms(r.visibleMax)))
	row("sampled: visible after audit p50 / max", fmt.Sprintf("%.1f / %.1f ms", ms(r.gapP50), ms(r.gapMax)))
	row("backlog drain after the last filing", fmt.Sprintf("%.2f s", r.drain.Seconds()))
	row("late flags / false late flags", fmt.Sprintf("%d / %d  (target 0 false)", r.late, r.falseLate))
	row("broadcasts not completed", fmt.Sprintf("%d", r.notCompleted))
	return s.String()
}

// measureReceipts reads every filing back and matches its audit trail
// against the receipts the providers stored.
// seen are the sampled states and when the API first showed them.
func measureReceipts(b *testing.B, api *benchAPI, ids []string, sent *sentReceipts, seen map[receiptKey]time.Time) receiptFigures {
	type detail struct {
		Status    tocsin.Status             `json:"status"`
		Providers []tocsin.ProviderProgress `json:"providers"`
		Timeline  []tocsin.AuditEntry       `json:"timeline"`
	}
	details := make([]detail, len(ids))
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range receiptClients {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(ids) && firstErr.Load() == nil; i = int(next.Add(1) - 1) {
				if err := api.do("GET", "/api/v1/broadcasts/"+ids[i], "", http.StatusOK, &details[i]); err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		b.Fatal(*err)
	}

	stored := sent.snapshot()
	applied := map[receiptKey]time.Time{}
	queuedAt := map[string]time.Time{} // by "provider broadcast"
	var published []time.Duration
	r := receiptFigures{filings: len(ids), receipts: len(stored)}
	for i, d := range details {
		if d.Status != tocsin.StatusCompleted {
			r.notCompleted++
		}
		queued := map[string]time.Time{}
		for _, p := range d.Providers {
			queued[p.Provider] = p.QueuedAt
			queuedAt[p.Provider+" "+ids[i]] = p.QueuedAt
		}
		for _, e := range d.Timeline {
			switch e.Action {
			case tocsin.AuditReceipt:
				k := receiptKey{provider: e.Org, broadcast: ids[i]}
				var recipients int
				if _, err := fmt.Sscanf(e.Note, "%s %d recipients, %d sent, %d delivered, %d failed",
					&k.status, &recipients, &k.sent, &k.delivered, &k.failed); err != nil {
					b.Fatalf("audit note %q: %v", e.Note, err)
				}
				k.status = strings.TrimSuffix(k.status, ":")
				if _, dup := applied[k]; !dup {
					applied[k] = e.At
				}
				r.lastApplied = later(r.lastApplied, e.At)
			case tocsin.AuditDispatchPublished:
				for pair := range strings.SplitSeq(e.Note, "; ") {
					p, _, _ := strings.Cut(pair, " ")
					if q, ok := queued[p]; ok {
						published = append(published, e.At.Sub(q))
					}
				}
			case "late":
				r.late++
				p, _, _ := strings.Cut(e.Note, " ")
				got, ok := stored[receiptKey{provider: p, broadcast: ids[i], status: string(tocsin.DeliveryReceived)}]
				if ok && got.Sub(queued[p]) <= receiptDeadline {
					r.falseLate++
				}
			}
		}
	}
	took := sent.taken()
	var takeOn time.Duration // summed over dispatches: took on → received stored
	var lags, firsts, toProvider, toApplied, toTaken []time.Duration
	// Only a change of status is audited (progress within a status updates
	// the record alone), so the lag is each provider's first receipt of
	// each status: from its PubAck to the entry it made.
	firstOf := map[receiptKey]receiptKey{} // by provider, broadcast and status
	for k, at := range stored {
		s := receiptKey{provider: k.provider, broadcast: k.broadcast, status: k.status}
		if f, ok := firstOf[s]; !ok || at.Before(stored[f]) {
			firstOf[s] = k
		}
	}
	for _, k := range firstOf {
		at := stored[k]
		done, ok := applied[k]
		if !ok {
			r.unapplied++
			continue
		}
		lag := done.Sub(at)
		if lag < 0 {
			// Applied before the provider had its PubAck back: the
			// reference is that PubAck, a little after the store.
			r.early++
			lag = 0
		}
		lags = append(lags, lag)
		if k.status == string(tocsin.DeliveryReceived) {
			firsts = append(firsts, lag)
			q := queuedAt[k.provider+" "+k.broadcast]
			if t, ok := took[k.provider+" "+k.broadcast]; ok {
				toTaken = append(toTaken, t.Sub(q))
				takeOn += at.Sub(t)
			}
			toProvider = append(toProvider, at.Sub(q))
			toApplied = append(toApplied, done.Sub(q))
		}
	}
	if len(lags) == 0 {
		b.Fatal("no receipt was applied")
	}
	slices.Sort(lags)
	slices.Sort(firsts)
	pct := func(s []time.Duration, p int) time.Duration {
		if len(s) == 0 {
			return 0
		}
		return s[min(len(s)-1, len(s)*p/100)]
	}
	r.p50, r.p99, r.max = pct(lags, 50), pct(lags, 99), lags[len(lags)-1]
	r.firstP99 = pct(firsts, 99)
	slices.Sort(published)
	r.toPublished = pct(published, 99)
	slices.Sort(toTaken)
	r.toTaken = pct(toTaken, 99)
	if len(toTaken) > 0 {
		r.takeOnMean = takeOn / time.Duration(len(toTaken))
	}
	slices.Sort(toProvider)
	slices.Sort(toApplied)
	r.toProvider, r.toApplied, r.toAppliedMax = pct(toProvider, 99), pct(toApplied, 99), toApplied[len(toApplied)-1]

	var visible, gaps []time.Duration
	for k, at := range seen {
		stored, ok := stored[k]
		done, applied := applied[k]
		if !ok || !applied {
			continue // a state no receipt of its own made (a stop), or never sent
		}
		visible = append(visible, max(at.Sub(stored), 0))
		gaps = append(gaps, at.Sub(done))
	}
	slices.Sort(visible)
	slices.Sort(gaps)
	r.sampled = len(visible)
	if r.sampled > 0 {
		r.visibleP99, r.visibleMax = pct(visible, 99), visible[len(visible)-1]
		r.gapP50, r.gapMax = pct(gaps, 50), gaps[len(gaps)-1]
	}
	return r
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// visibility checks what the audit trail's times leave out (the commit
// after the applying transaction stamped them) on a sample: every
// sampleEvery-th filing is polled through the API every pollEvery until it
// completes, and each progress state (a provider's status and counts) is
// timed when a response first shows it. That time is an upper bound: the
// state became visible at most one poll earlier.
type visibility struct {
	api  *benchAPI
	ids  chan string
	wg   sync.WaitGroup
	mu   sync.Mutex
	seen map[receiptKey]time.Time // guarded by mu
	err  error                    // guarded by mu
}

const (
	sampleEvery  = 50 // 4 samples a second at 200/s
	pollEvery    = 20 * time.Millisecond
	samplePolls  = 2 // pollers: about two samples are in flight at a time
	sampleLonger = 30 * time.Second
)

func newVisibility(api *benchAPI) *visibility {
	v := &visibility{api: api, ids: make(chan string, receiptRate), seen: map[receiptKey]time.Time{}}
	for range samplePolls {
		v.wg.Go(func() {
			for id := range v.ids {
				v.watch(id)
			}
		})
	}
	return v
}

// sample is fileSteadily's callback; it never blocks the filing.
func (v *visibility) sample(i int, id string) {
	if i%sampleEvery != 0 {
		return
	}
	select {
	case v.ids <- id:
	default:
	}
}

func (v *visibility) watch(id string) {
	var d struct {
		Status    tocsin.Status             `json:"status"`
		Providers []tocsin.ProviderProgress `json:"providers"`
	}
	for end := time.Now().Add(sampleLonger); time.Now().Before(end); time.Sleep(pollEvery) {
		if err := v.api.do("GET", "/api/v1/broadcasts/"+id, "", http.StatusOK, &d); err != nil {
			v.mu.Lock()
			v.err = err
			v.mu.Unlock()
			return
		}
		now := time.Now()
		v.mu.Lock()
		for _, p := range d.Providers {
			if p.Status == tocsin.DeliveryQueued {
				continue
			}
			k := receiptKey{provider: p.Provider, broadcast: id, status: string(p.Status), sent: p.Sent, delivered: p.Delivered, failed: p.Failed}
			if _, ok := v.seen[k]; !ok {
				v.seen[k] = now
			}
		}
		v.mu.Unlock()
		if d.Status.Final() {
			return
		}
	}
}

func (v *visibility) stop(b *testing.B) map[receiptKey]time.Time {
	close(v.ids)
	v.wg.Wait()
	if v.err != nil {
		b.Fatal(v.err)
	}
	return v.seen
}
