package main

// BenchmarkEmergencyPath holds the emergency path to its budget: within 2x
// of the raw durable chain in latency and at least half its throughput.
// Both are measured in the same run on the same disk, so the figures are
// ratios, not absolute numbers that depend on the machine.
//
//	go test -run '^$' -bench EmergencyPath -benchtime 1x ./cmd/tocsin/
//
// The raw durable chain is the least any durable dispatch must do, per
// message: one fsynced bbolt commit (plain db.Update, default options),
// one JetStream publish acknowledged by a file stream with sync_interval
// always (the embedded server Tocsin runs), and its receipt by a pull
// consumer on another connection.
//
// The emergency path is a real "tocsin demo --no-simulators": from sending
// POST /api/v1/broadcasts (an emergency for 440100, as gd-met) until a pull
// consumer logged in as the provider cucc receives that broadcast's
// dispatch.
//
// Latency is sequential, one message at a time, end to end. Throughput is
// benchConcurrency producers (goroutines for the raw chain, HTTP clients
// for the emergency path) that each go on to their next message as soon as
// the previous one is durable (PubAck for the raw chain, 201 for a filing),
// timed until the consumer has received all benchThroughputN. The two
// paths run side by side and take turns (see compare), so a slow spell of
// the disk does not land on one of them only.
//
// The demo's scope 440100 is covered by cmcc and cucc, so each filing is
// two fsynced JetStream writes, cmcc's first: cucc's dispatch, the one
// timed, waits for both. That, the HTTP round trip with its token check
// and the filing's larger transaction are most of what the emergency path
// costs beyond the raw chain.
//
// With TOCSIN_BENCH_STRICT set, missing either target fails the benchmark.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
)

const (
	benchWarmup      = 20
	benchSequentialN = 200
	benchThroughputN = 2000
	benchConcurrency = 32
	benchWait        = 30 * time.Second // longest any one message may take to arrive
)

func BenchmarkEmergencyPath(b *testing.B) {
	if testing.Short() {
		b.Skip("starts an embedded NATS server and a demo coordinator")
	}
	// One measurement per run whatever b.N: compare times its own samples.
	// A run takes far longer than the default benchtime, so the framework
	// does not repeat it (nor with -benchtime 1x). No sub-benchmarks: a
	// parent's metrics would not be reported.
	figures := compare(b, rawChain(b), emergencyPath(b))
	raw, emergency := figures[0], figures[1]
	latency := float64(emergency.mean) / float64(raw.mean)
	throughput := emergency.throughput / raw.throughput
	b.Logf("raw chain: %s", raw)
	b.Logf("emergency: %s", emergency)
	b.Logf("latency ratio (emergency/raw mean): %.2f  (target <= 2.0)", latency)
	b.Logf("latency ratio (emergency/raw p50):  %.2f", float64(emergency.p50)/float64(raw.p50))
	b.Logf("throughput ratio (emergency/raw): %.2f    (target >= 0.5)", throughput)
	b.ReportMetric(latency, "latency-x")
	b.ReportMetric(throughput, "throughput-x")
	b.ReportMetric(float64(raw.mean.Microseconds())/1000, "raw-mean-ms")
	b.ReportMetric(float64(emergency.mean.Microseconds())/1000, "emergency-mean-ms")
	b.ReportMetric(raw.throughput, "raw-msg/s")
	b.ReportMetric(emergency.throughput, "emergency-msg/s")
	if os.Getenv("TOCSIN_BENCH_STRICT") != "" && (latency > 2 || throughput < 0.5) {
		b.Errorf("emergency path misses its budget: latency %.2fx (<= 2), throughput %.2fx (>= 0.5)", latency, throughput)
	}
}

// benchFigures are one path's results.
type benchFigures struct {
	p50, p99, mean time.Duration
	// durable is the mean time until send returned (the PubAck, or the
	// 201); the rest of mean is the way on to the consumer.
	durable    time.Duration
	throughput float64 // messages a second
}

func (f benchFigures) String() string {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return fmt.Sprintf("p50 %.2f ms, mean %.2f ms, %.0f msg/s  (p99 %.2f ms; mean %.2f ms until durable, %.2f ms on to the consumer)",
		ms(f.p50), ms(f.mean), f.throughput, ms(f.p99), ms(f.durable), ms(max(0, f.mean-f.durable)))
}

func summarise(samples []time.Duration) benchFigures {
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return benchFigures{
		p50:  s[len(s)/2],
		p99:  s[min(len(s)-1, len(s)*99/100)],
		mean: sum / time.Duration(len(s)),
	}
}

// arrivals records when each message id reached the consumer, and lets a
// producer wait for its own, whichever of the two comes first.
type arrivals struct {
	mu      sync.Mutex
	at      map[string]time.Time
	waiters map[string]chan time.Time
	unique  atomic.Int64
	all     chan struct{} // closed once unique reaches target
	target  int64
}

func newArrivals() *arrivals {
	return &arrivals{at: map[string]time.Time{}, waiters: map[string]chan time.Time{}}
}

func (a *arrivals) arrived(id string, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.at[id]; dup {
		return
	}
	a.at[id] = t
	if w, ok := a.waiters[id]; ok {
		w <- t
		delete(a.waiters, id)
	}
	if n := a.unique.Add(1); a.all != nil && n == a.target {
		close(a.all)
	}
}

// expect returns a channel that gets id's arrival time.
func (a *arrivals) expect(id string) <-chan time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := make(chan time.Time, 1)
	if t, ok := a.at[id]; ok {
		c <- t
	} else {
		a.waiters[id] = c
	}
	return c
}

// expectTotal returns a channel closed once n more distinct ids have
// arrived.
func (a *arrivals) expectTotal(n int) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.all = make(chan struct{})
	a.target = a.unique.Load() + int64(n)
	return a.all
}

func waitArrival(b *testing.B, c <-chan time.Time, id string) time.Time {
	select {
	case t := <-c:
		return t
	case <-time.After(benchWait):
		b.Fatalf("%s never reached the consumer", id)
		return time.Time{}
	}
}

// consume acks and records every message of cons by the id header.
func consume(b *testing.B, cons jetstream.Consumer, header string, arr *arrivals) {
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		arr.arrived(m.Headers().Get(header), now)
		_ = m.Ack()
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)
}

// rawChain sets up the raw durable chain.
func rawChain(b *testing.B) path {
	dir := b.TempDir()
	log := slog.New(slog.DiscardHandler)

	db, err := bolt.Open(filepath.Join(dir, "raw.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	bucket := []byte("raw")
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }); err != nil {
		b.Fatal(err)
	}

	keys, err := natsbus.LoadKeys(filepath.Join(dir, "nats", "keys"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := natsbus.StartEmbedded(filepath.Join(dir, "nats"), "127.0.0.1:0", keys, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Shutdown)
	auth := e.CoordinatorOption()
	bus, err := natsbus.Connect(e.ClientURL(), log, 1, auth)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bus.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx); err != nil {
		b.Fatal(err)
	}
	if err := bus.EnsureProviderConsumer(ctx, "raw"); err != nil {
		b.Fatal(err)
	}
	// The consumer is on a connection of its own, as a provider's is.
	nc, err := nats.Connect(e.ClientURL(), auth)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	cons, err := js.Consumer(ctx, natsbus.DispatchStream, "raw")
	if err != nil {
		b.Fatal(err)
	}
	arr := newArrivals()
	consume(b, cons, natsbus.HeaderBroadcastID, arr)

	// A value the size of a dispatch.
	value := bytes.Repeat([]byte("x"), 500)
	var seq atomic.Uint64
	send := func() (string, time.Time, error) {
		start := time.Now()
		n := seq.Add(1)
		id := "RAW" + strconv.FormatUint(n, 10)
		err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucket).Put(binary.BigEndian.AppendUint64(nil, n), value)
		})
		if err != nil {
			return "", start, err
		}
		msg := nats.NewMsg(natsbus.DispatchSubject("raw"))
		msg.Data = value
		msg.Header.Set(jetstream.MsgIDHeader, id)
		msg.Header.Set(natsbus.HeaderBroadcastID, id)
		pctx, cancel := context.WithTimeout(context.Background(), benchWait)
		defer cancel()
		_, err = bus.JetStream().PublishMsg(pctx, msg)
		return id, start, err
	}
	return path{send, arr}
}

// emergencyPath sets up the emergency path through a demo coordinator.
func emergencyPath(b *testing.B) path {
	dir := b.TempDir()
	base := startBenchServer(b, dir)
	tokens := map[string]string{}
	readJSONFile(b, filepath.Join(dir, "demo-tokens.json"), &tokens)
	var creds map[string]natsbus.Credentials
	readJSONFile(b, filepath.Join(dir, "demo-providers.json"), &creds)
	cucc := creds["cucc"]

	nc, err := nats.Connect(cucc.URL, mustCredsOption(b, cucc.Creds))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, cucc.Stream, cucc.Consumer)
	if err != nil {
		b.Fatal(err)
	}
	arr := newArrivals()
	consume(b, cons, natsbus.HeaderBroadcastID, arr)

	client := &http.Client{
		Timeout:   benchWait,
		Transport: &http.Transport{MaxIdleConns: 2 * benchConcurrency, MaxIdleConnsPerHost: 2 * benchConcurrency},
	}
	b.Cleanup(client.CloseIdleConnections)
	const body = `{"title":"台风红色预警","content":"【广东省气象局】台风“海燕”将于今夜登陆，请留在室内，远离海边。","scope":["440100"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"red"}}`
	url := base + "/api/v1/broadcasts"
	bearer := "Bearer " + tokens["gd-met"]
	file := func() (string, time.Time, error) {
		start := time.Now()
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			return "", start, err
		}
		req.Header.Set("Authorization", bearer)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return "", start, err
		}
		defer resp.Body.Close()
		var out struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		_, _ = io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != http.StatusCreated {
			return "", start, fmt.Errorf("filing: %d %v", resp.StatusCode, err)
		}
		return out.ID, start, nil
	}
	return path{file, arr}
}

// path is one way of getting a message to a consumer: send starts one
// message and returns once the path holds it durably (PubAck, 201), with
// its id and when it started; arr records its arrival.
type path struct {
	send func() (id string, start time.Time, err error)
	arr  *arrivals
}

// warmUp sends a few messages one at a time.
func (p path) warmUp(b *testing.B) {
	for range benchWarmup {
		p.sample(b)
	}
}

// sample sends one message and waits for it: its end-to-end latency, and
// how long it took to be durable.
func (p path) sample(b *testing.B) (latency, durable time.Duration) {
	id, start, err := p.send()
	durable = time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	return waitArrival(b, p.arr.expect(id), id).Sub(start), durable
}

// burst sends n messages from benchConcurrency producers and returns how
// long it took until all had arrived.
func (p path) burst(b *testing.B, n int) time.Duration {
	all := p.arr.expectTotal(n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	start := time.Now()
	for range benchConcurrency {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, _, err := p.send(); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		b.Fatal(*err)
	}
	select {
	case <-all:
	case <-time.After(benchWait):
		b.Fatalf("only %d of %d messages arrived", p.arr.unique.Load(), n)
	}
	return time.Since(start)
}

// compare measures the paths side by side. They take turns, a block of
// latency samples or a throughput burst at a time, so a slow spell of the
// (shared, virtual) disk falls on all of them rather than on one; a pause
// between turns lets one path's trailing writes (the relay's dequeue, the
// consumers' acks) finish before the next is timed.
func compare(b *testing.B, paths ...path) []benchFigures {
	const (
		blocks = 8                      // of latency samples
		rounds = 4                      // throughput bursts
		settle = 100 * time.Millisecond // > the relay's dequeueWait
	)
	for _, p := range paths {
		p.warmUp(b)
	}
	samples := make([][]time.Duration, len(paths))
	durable := make([]time.Duration, len(paths))
	for range blocks {
		for i, p := range paths {
			time.Sleep(settle)
			for range benchSequentialN / blocks {
				l, d := p.sample(b)
				samples[i] = append(samples[i], l)
				durable[i] += d
			}
		}
	}
	elapsed := make([]time.Duration, len(paths))
	for range rounds {
		for i, p := range paths {
			time.Sleep(settle)
			elapsed[i] += p.burst(b, benchThroughputN/rounds)
		}
	}
	out := make([]benchFigures, len(paths))
	for i := range paths {
		out[i] = summarise(samples[i])
		out[i].durable = durable[i] / time.Duration(len(samples[i]))
		out[i].throughput = float64(benchThroughputN/rounds*rounds) / elapsed[i].Seconds()
	}
	return out
}

// startBenchServer runs "tocsin demo --no-simulators" in process, as
// startServer does for tests, and returns its base URL.
func startBenchServer(b *testing.B, dir string) string {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	args := []string{"demo", "--no-simulators", "--data", dir, "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "warn"}
	go func() {
		err := run(ctx, args, noEnv, pw, io.Discard)
		pw.CloseWithError(err)
		done <- err
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	found := listeningAddr(pr)
	select {
	case addr, ok := <-found:
		if !ok {
			b.Fatal("tocsin exited before listening")
		}
		return addr
	case <-time.After(30 * time.Second):
		b.Fatal("tocsin did not start")
		return ""
	}
}

func readJSONFile(b *testing.B, path string, v any) {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		b.Fatal(err)
	}
}
