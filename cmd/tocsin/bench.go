package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-dev/tocsin/internal/bench"
	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// benchConfig sizes a "tocsin bench" run.
type benchConfig struct {
	Latency, Throughput, Clients  int
	Providers, FanoutRounds       int
	Queue, Finished               int
	CPUProfile, MemProfile, Trace string
	Records                       bool   // this process is the records phase's child
	Only                          string // a chain whose throughput alone is measured
}

// benchChains are the chains' names, as --only takes them.
var benchChains = []string{"RAW", "RAWB", "Tocsin"}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var cfg benchConfig
	fs.IntVar(&cfg.Latency, "latency", 1000, "filings per chain timed one at a time (the p99 of 200 is the second-worst sample, and hid a 1-in-60 tail)")
	fs.IntVar(&cfg.Throughput, "throughput", 2000, "filings per chain for the throughput figure")
	fs.IntVar(&cfg.Clients, "clients", 64, "concurrent filers for the throughput figure")
	fs.IntVar(&cfg.Providers, "providers", 300, "providers registered beside the demo's, all covering the fan-out filing")
	fs.IntVar(&cfg.FanoutRounds, "fanout-rounds", 6, "fan-out filings per chain (6: each chain first, second and last twice, after each other chain twice)")
	fs.IntVar(&cfg.Queue, "queue", 100_000, "ordinary filings pending review when the review queue is paged")
	fs.IntVar(&cfg.Finished, "finished", 100_000, "finished emergencies for RSS and bytes on disk per broadcast")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the comparison to this file")
	fs.StringVar(&cfg.MemProfile, "memprofile", "", "write an allocation profile to this file when the comparison ends (allocations since the process started)")
	fs.StringVar(&cfg.Trace, "trace", "", "write an execution trace of the comparison to this file (go tool trace)")
	fs.BoolVar(&cfg.Records, "records-phase", false, "internal: run only the records phase and print its figures as JSON")
	fs.StringVar(&cfg.Only, "only", "", "measure only this chain's throughput (RAW, RAWB or Tocsin), alone and in 2,000-filing rounds, and nothing else: with --cpuprofile, a profile of just that")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Only != "" {
		if !slices.Contains(benchChains, cfg.Only) {
			return usageError("--only takes one of %s, not %q", strings.Join(benchChains, ", "), cfg.Only)
		}
		return benchCompare(ctx, cfg, recordFigures{}, stdout)
	}
	if cfg.Records {
		return benchRecords(ctx, cfg, stdout)
	}
	fmt.Fprintf(stdout, "tocsin bench: raw chains RAW and RAWB against Tocsin, %d providers beside the demo's\n", cfg.Providers)
	rec, err := runRecordsChild(ctx, args, stderr)
	if err != nil {
		return fmt.Errorf("records phase: %w", err)
	}
	fmt.Fprintf(stdout, "records phase (its own process): %d finished, %d pending, %s\n", rec.Finished, rec.Queue, time.Duration(rec.Seconds*float64(time.Second)).Round(time.Second))
	return benchCompare(ctx, cfg, rec, stdout)
}

// recordFigures are the records phase's results.
type recordFigures struct {
	Finished, Queue   int
	RSSMB             float64 `json:"rss_mb"`
	BytesPerBroadcast float64 `json:"bytes_per_broadcast"`
	// PerBucket is each bucket's pages added, per finished broadcast
	// ("free": pages free for reuse), to show where the bytes go.
	PerBucket          map[string]float64 `json:"per_bucket"`
	QueueP50, QueueP99 float64            // ms
	Register           float64            // seconds to register the providers
	Seconds            float64
}

// runRecordsChild runs the records phase in a process of its own, so its
// RSS is Tocsin's and not the raw chains'.
func runRecordsChild(ctx context.Context, args []string, stderr io.Writer) (recordFigures, error) {
	exe, err := os.Executable()
	if err != nil {
		return recordFigures{}, err
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{"bench", "--records-phase"}, args...)...)
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return recordFigures{}, err
	}
	var rec recordFigures
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		return rec, fmt.Errorf("child said %q: %w", out, err)
	}
	return rec, nil
}

// benchTocsin is a demo coordinator run in process, with its providers'
// consumers pulled on the coordinator's own connection.
type benchTocsin struct {
	c      *coordinator
	dir    string
	tokens map[string]string
	base   string
	client *http.Client
	stop   func()
	// consumers is the providers' connection (see chain), closed by stop.
	consumers *nats.Conn
}

// startBenchTocsin starts a demo coordinator in dir and seeds it; alone
// says the process runs nothing else.
//
// The soft memory limit is the runtime's, for the whole process: shared
// with the raw chains (in benchCompare) it would be Tocsin's limit spent on
// their heaps, so only the records phase, a process of Tocsin alone, keeps
// it (shared, all three chains collect at Go's default pace).
func startBenchTocsin(ctx context.Context, dir string, clients int, alone bool) (*benchTocsin, error) {
	args := []string{"--data", dir, "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "error", "--no-simulators"}
	if !alone {
		args = append(args, "--memory-limit", "off")
	}
	cfg, err := parseServeConfig(args, noEnvironment, io.Discard, true)
	if err != nil {
		return nil, err
	}
	log := newLogger(os.Stderr, cfg.LogLevel, false)
	ctx, cancel := context.WithCancel(ctx)
	c, err := startCoordinator(ctx, cfg, log)
	if err != nil {
		cancel()
		return nil, err
	}
	served := make(chan struct{})
	t := &benchTocsin{c: c, dir: dir, base: "http://" + c.httpAddr, client: bench.HTTPClient(clients)}
	t.stop = func() {
		cancel()
		<-served
		if t.consumers != nil {
			t.consumers.Close()
		}
		c.close()
	}
	if err := c.seedDemo(ctx, io.Discard); err != nil {
		close(served)
		t.stop()
		return nil, err
	}
	go func() { defer close(served); _ = c.serve(ctx) }()
	data, err := os.ReadFile(filepath.Join(dir, "demo-tokens.json"))
	if err == nil {
		err = json.Unmarshal(data, &t.tokens)
	}
	if err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// register registers n providers covering Guangxi (450000) through the
// registry, as POST /api/v1/providers does.
func (t *benchTocsin) register(ctx context.Context, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("bench%03d", i)
		_, err := t.c.registry.Register(ctx, tocsin.Provider{ID: ids[i], Name: "Bench provider " + ids[i], Regions: []string{"450000"}})
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", ids[i], err)
		}
	}
	return ids, nil
}

const (
	benchEmergency = `{"title":"台风红色预警","content":"【广东省气象局】台风“海燕”将于今夜登陆，请留在室内，远离海边。","scope":["440100"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"red"}}`
	benchFanout    = `{"title":"台风红色预警","content":"【广西壮族自治区卫生健康委员会】台风“海燕”将于今夜登陆，请留在室内，远离海边。","scope":["450000"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"red"}}`
)

// chain returns Tocsin as a bench chain: gd-met's emergencies for 440100
// (cmcc and cucc), gx-health's for 450000 (cmcc, ctcc and the registered).
func (t *benchTocsin) chain(ctx context.Context, registered []string) (bench.Chain, []jetstream.ConsumeContext, error) {
	ch := bench.Chain{Name: "Tocsin", Arr: bench.NewArrivals(), Providers: 2, Fanout: 2 + len(registered)}
	var consumed []jetstream.ConsumeContext
	// The consumers pull on a connection of their own, as providers do
	// and as the raw chains' consumers do, not on the coordinator's: that
	// one carries the relay's publishes and the receipts, and 300
	// deliveries and acks sharing its socket were Tocsin's alone to pay.
	// The coordinator's credentials, because the stream is its account's.
	nc, err := nats.Connect(t.c.natsURL, t.c.embedded.CoordinatorOption(), nats.Name("bench providers"))
	if err != nil {
		return ch, nil, fmt.Errorf("connect the providers' consumers: %w", err)
	}
	t.consumers = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return ch, nil, err
	}
	for _, p := range append([]string{"cmcc", "cucc", "ctcc"}, registered...) {
		cons, err := js.Consumer(ctx, natsbus.DispatchStream, p)
		if err == nil {
			var cc jetstream.ConsumeContext
			cc, err = bench.Consume(cons, p, ch.Arr)
			consumed = append(consumed, cc)
		}
		if err != nil {
			return ch, consumed, fmt.Errorf("consumer %s: %w", p, err)
		}
	}
	url := t.base + "/api/v1/broadcasts"
	ch.File = func(ctx context.Context, fanout bool) (string, time.Time, error) {
		start := time.Now()
		body, org := benchEmergency, "gd-met"
		if fanout {
			body, org = benchFanout, "gx-health"
		}
		id, err := bench.Post(ctx, t.client, url, t.tokens[org], body)
		return id, start, err
	}
	return ch, consumed, nil
}

func benchCompare(ctx context.Context, cfg benchConfig, rec recordFigures, stdout io.Writer) error {
	root, err := os.MkdirTemp("", "tocsin-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	t, err := startBenchTocsin(ctx, filepath.Join(root, "tocsin"), cfg.Clients, false)
	if err != nil {
		return err
	}
	defer t.stop()
	registered, err := t.register(ctx, cfg.Providers)
	if err != nil {
		return err
	}
	tch, consumed, err := t.chain(ctx, registered)
	defer func() {
		for _, cc := range consumed {
			cc.Stop()
		}
	}()
	if err != nil {
		return err
	}
	chains := []bench.Chain{}
	for _, batched := range []bool{false, true} {
		name := "RAW"
		if batched {
			name = "RAWB"
		}
		fanout := make([]string, len(registered))
		for i, p := range registered {
			fanout[i] = "f" + p
		}
		raw, err := bench.StartRaw(ctx, bench.RawConfig{Name: name, Dir: filepath.Join(root, name), Batched: batched,
			Providers: []string{"p1", "p2"}, Fanout: fanout})
		if err != nil {
			return err
		}
		defer raw.Close()
		chains = append(chains, raw.Chain)
	}
	chains = append(chains, tch)
	if cfg.Only != "" {
		return benchOnly(ctx, cfg, chains, stdout)
	}
	stop, err := startProfiles(cfg)
	if err != nil {
		return err
	}
	defer stop()
	// Warm up: connections, page cache, the relay's first round.
	if _, err := bench.Latency(ctx, chains, 10*len(chains), 1); err != nil {
		return err
	}
	lat, err := bench.Latency(ctx, chains, cfg.Latency, 8)
	if err != nil {
		return err
	}
	tput, err := bench.Throughput(ctx, chains, cfg.Throughput, 4, cfg.Clients)
	if err != nil {
		return err
	}
	fan, err := bench.Fanout(ctx, chains, cfg.FanoutRounds)
	if err != nil {
		return err
	}
	raw, rawb, toc := 0, 1, 2
	fanP50 := func(i int) time.Duration { return bench.Percentile(fan[i], 50) }
	ratio := func(a, b float64) float64 { return a / b }
	r := struct{ latency, throughput, fanout, throughputB, fanoutB float64 }{
		latency:     ratio(float64(lat[toc].P99), float64(lat[raw].P99)),
		throughput:  ratio(tput[toc], tput[raw]),
		fanout:      ratio(float64(fanP50(toc)), float64(fanP50(raw))),
		throughputB: ratio(tput[toc], tput[rawb]),
		fanoutB:     ratio(float64(fanP50(toc)), float64(fanP50(rawb))),
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "figure\tRAW\tRAWB\tTocsin\tTocsin/RAW\tTocsin/RAWB\ttarget\t\n")
	fmt.Fprintf(w, "latency p50, one filing at a time, POST → both consumers\t%s\t%s\t%s\t%.2f\t%.2f\t\t\n",
		bench.Ms(lat[raw].P50), bench.Ms(lat[rawb].P50), bench.Ms(lat[toc].P50), ratio(float64(lat[toc].P50), float64(lat[raw].P50)), ratio(float64(lat[toc].P50), float64(lat[rawb].P50)))
	fmt.Fprintf(w, "latency p99\t%s\t%s\t%s\t%.2f\t%.2f\t≤ 1.5 RAW\t\n",
		bench.Ms(lat[raw].P99), bench.Ms(lat[rawb].P99), bench.Ms(lat[toc].P99), r.latency, ratio(float64(lat[toc].P99), float64(lat[rawb].P99)))
	fmt.Fprintf(w, "throughput, %d clients, counted at the consumers\t%.0f/s\t%.0f/s\t%.0f/s\t%.2f\t%.2f\t≥ 1.0 RAWB\t\n",
		cfg.Clients, tput[raw], tput[rawb], tput[toc], r.throughput, r.throughputB)
	fmt.Fprintf(w, "fan-out to %d providers, 201 → last consumer (p50 of %d)\t%s\t%s\t%s\t%.2f\t%.2f\t≤ 1.2 RAWB\t\n",
		tch.Fanout, cfg.FanoutRounds, bench.Ms(fanP50(raw)), bench.Ms(fanP50(rawb)), bench.Ms(fanP50(toc)), r.fanout, r.fanoutB)
	fmt.Fprintf(w, "review queue page p99, %d pending\t\t\t%.1f ms\t\t\t≤ 20 ms\t\n", rec.Queue, rec.QueueP99)
	fmt.Fprintf(w, "bbolt bytes per finished broadcast (%d finished)\t\t\t%.0f B\t\t\t≤ 4096 B\t\n", rec.Finished, rec.BytesPerBroadcast)
	fmt.Fprintf(w, "peak RSS, %d providers registered\t\t\t%.0f MB\t\t\t≤ 150 MB\t\n", cfg.Providers+3, rec.RSSMB)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "registering %d providers took %.1f s\n", cfg.Providers, rec.Register)
	fmt.Fprintf(stdout, "bytes per finished broadcast by bucket:%s\n", perBucketLine(rec.PerBucket))
	fmt.Fprintf(stdout, "ratios: latency_p99=%.2f throughput=%.2f fanout=%.2f throughput_vs_batched=%.2f fanout_vs_batched=%.2f queue_p99_ms=%.1f rss_mb=%.0f bytes_per_broadcast=%.0f\n",
		r.latency, r.throughput, r.fanout, r.throughputB, r.fanoutB, rec.QueueP99, rec.RSSMB, rec.BytesPerBroadcast)
	return nil
}

// benchOnly measures the throughput of one chain alone, in rounds of
// 2,000 filings, after warming them all up: the figure to profile when
// making a chain faster, without the others' work in the profile.
func benchOnly(ctx context.Context, cfg benchConfig, chains []bench.Chain, stdout io.Writer) error {
	if _, err := bench.Latency(ctx, chains, 10*len(chains), 1); err != nil {
		return err
	}
	i := slices.IndexFunc(chains, func(c bench.Chain) bool { return c.Name == cfg.Only })
	stop, err := startProfiles(cfg)
	if err != nil {
		return err
	}
	defer stop()
	rounds := max(1, cfg.Throughput/2000)
	filings := rounds * max(1, cfg.Throughput/rounds)
	before, err := processCPU()
	if err != nil {
		return err
	}
	allocatedBefore := allocated()
	tput, err := bench.Throughput(ctx, chains[i:i+1], cfg.Throughput, rounds, cfg.Clients)
	if err != nil {
		return err
	}
	after, err := processCPU()
	if err != nil {
		return err
	}
	allocatedDuring := allocated() - allocatedBefore
	used := after.minus(before)
	fmt.Fprintf(stdout, "throughput of %s alone, %d clients, %d filings (rounds: %d), counted at the consumers: %.0f/s\n",
		cfg.Only, cfg.Clients, filings, rounds, tput[0])
	fmt.Fprintf(stdout, "CPU per filing, the whole process (clients and NATS too): %.0f µs user + %.0f µs system\n",
		float64(used.user.Microseconds())/float64(filings), float64(used.system.Microseconds())/float64(filings))
	fmt.Fprintf(stdout, "allocated per filing, the whole process: %.1f KB\n", float64(allocatedDuring)/float64(filings)/1e3)
	return nil
}

// allocated is how many bytes the process has allocated on the heap since
// it started: what the collector's work grows with.
func allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// cpuTimes is the CPU time a process has used, in user and system mode.
type cpuTimes struct{ user, system time.Duration }

func (c cpuTimes) minus(d cpuTimes) cpuTimes {
	return cpuTimes{c.user - d.user, c.system - d.system}
}

// processCPU is the CPU time this process has used so far.
func processCPU() (cpuTimes, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}, fmt.Errorf("read the CPU time used: %w", err)
	}
	return cpuTimes{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}, nil
}

// startProfiles starts a CPU profile and an execution trace, and has stop
// write an allocation profile, each only if given a path. The trace shows
// what the CPU profile cannot: where the filings wait when the CPU is not
// the limit.
func startProfiles(cfg benchConfig) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, s := range slices.Backward(stops) {
			s()
		}
	}
	start := func(path string, begin func(io.Writer) error, end func()) error {
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := begin(f); err != nil {
			f.Close()
			return err
		}
		stops = append(stops, func() { end(); f.Close() })
		return nil
	}
	if err := start(cfg.CPUProfile, pprof.StartCPUProfile, pprof.StopCPUProfile); err != nil {
		return nil, err
	}
	if err := start(cfg.Trace, trace.Start, trace.Stop); err != nil {
		stop()
		return nil, err
	}
	var heap io.Writer
	writeAllocs := func() {
		runtime.GC() // the profile holds allocations up to the last collection
		_ = pprof.Lookup("allocs").WriteTo(heap, 0)
	}
	if err := start(cfg.MemProfile, func(w io.Writer) error { heap = w; return nil }, writeAllocs); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// benchRecords is the records phase: Tocsin alone with the providers
// registered, finished broadcasts for RSS and bytes on disk, then the
// review queue paged at its fullest. It prints its figures as one JSON
// line.
func benchRecords(ctx context.Context, cfg benchConfig, stdout io.Writer) error {
	began := time.Now()
	dir, err := os.MkdirTemp("", "tocsin-bench-records-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t, err := startBenchTocsin(ctx, dir, cfg.Clients, true)
	if err != nil {
		return err
	}
	defer t.stop()
	var rec recordFigures
	start := time.Now()
	if _, err := t.register(ctx, cfg.Providers); err != nil {
		return err
	}
	rec.Register = time.Since(start).Seconds()
	dbPath := filepath.Join(dir, "tocsin.db")
	before, err := fileSize(dbPath)
	if err != nil {
		return err
	}
	usageBefore, err := t.c.store.Usage(ctx)
	if err != nil {
		return err
	}
	svc := t.c.service
	emergency := func(a tocsin.Actor) error {
		var f tocsin.Filing
		if err := json.Unmarshal([]byte(benchEmergency), &f); err != nil {
			return err
		}
		b, _, err := svc.File(ctx, a, f, "")
		if err != nil {
			return err
		}
		// Both providers sent and delivered it: finished.
		var receipts []tocsin.ProviderReceipt
		for _, p := range []string{"cmcc", "cucc"} {
			for _, status := range []string{"sending", "delivered"} {
				receipts = append(receipts, tocsin.ProviderReceipt{Provider: p, Receipt: tocsin.Receipt{
					BroadcastID: b.ID, Status: status, Recipients: 1000, Sent: 1000, Delivered: 990, Failed: 10}})
			}
		}
		applied, err := svc.ApplyReceipts(ctx, receipts)
		if err != nil {
			return err
		}
		for _, a := range applied {
			if a.Err != nil {
				return a.Err
			}
		}
		return nil
	}
	if err := t.parallel(ctx, "gd-met", cfg.Finished, cfg.Clients, emergency); err != nil {
		return fmt.Errorf("finished broadcasts: %w", err)
	}
	if err := t.drainOutbox(ctx); err != nil {
		return err
	}
	after, err := fileSize(dbPath)
	if err != nil {
		return err
	}
	// Usage walks every page of the file, which maps them all: the peak
	// so far is taken first, and the walk's own is not counted.
	peakBefore, err := peakRSSMB()
	if err != nil {
		return err
	}
	usageAfter, err := t.c.store.Usage(ctx)
	if err != nil {
		return err
	}
	if err := resetPeakRSS(t.c.store); err != nil {
		return err
	}
	rec.Finished = cfg.Finished
	perBroadcast := func(n int64) float64 { return float64(n) / float64(max(1, cfg.Finished)) }
	rec.BytesPerBroadcast = perBroadcast(after - before)
	rec.PerBucket = map[string]float64{"free": perBroadcast(usageAfter.FreeBytes - usageBefore.FreeBytes)}
	for name, alloc := range usageAfter.Buckets {
		if added := alloc - usageBefore.Buckets[name]; added != 0 {
			rec.PerBucket[name] = perBroadcast(added)
		}
	}

	sendAt := time.Now().In(tocsin.Shanghai).AddDate(0, 2, 0)
	sendAt = time.Date(sendAt.Year(), sendAt.Month(), sendAt.Day(), 10, 0, 0, 0, tocsin.Shanghai)
	ordinary := func(a tocsin.Actor) error {
		_, _, err := svc.File(ctx, a, tocsin.Filing{Title: "防诈骗提示", Content: "【广东省气象局】请勿轻信陌生来电，谨防电信诈骗。",
			Scope: []string{"440100"}, SendAt: &sendAt}, "")
		return err
	}
	if err := t.parallel(ctx, "gd-met", cfg.Queue, cfg.Clients, ordinary); err != nil {
		return fmt.Errorf("pending filings: %w", err)
	}
	rec.Queue = cfg.Queue
	p50, p99, err := t.pageQueue(ctx, 200)
	if err != nil {
		return err
	}
	rec.QueueP50, rec.QueueP99 = p50, p99
	if rec.RSSMB, err = peakRSSMB(); err != nil {
		return err
	}
	rec.RSSMB = max(rec.RSSMB, peakBefore)
	rec.Seconds = time.Since(began).Seconds()
	return json.NewEncoder(stdout).Encode(rec)
}

// parallel runs fn n times from clients goroutines as org's actor.
func (t *benchTocsin) parallel(ctx context.Context, org string, n, clients int, fn func(tocsin.Actor) error) error {
	presented, err := t.c.keys.Verifier(time.Now).VerifyToken(t.tokens[org])
	if err != nil {
		return err
	}
	actor, err := t.c.service.Authenticate(ctx, presented)
	if err != nil {
		return err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && firstErr.Load() == nil {
				if err := fn(actor); err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		return *err
	}
	return nil
}

// drainOutbox waits for the relay to have published everything.
func (t *benchTocsin) drainOutbox(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		_, n, err := t.c.dispatcher.OldestOutbox(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the outbox did not drain within 2 minutes")
}

// pageQueue pages gd-cab's review queue n times over HTTP, the first page
// and pages deeper in turn, and returns p50 and p99 in milliseconds.
func (t *benchTocsin) pageQueue(ctx context.Context, n int) (p50, p99 float64, err error) {
	var samples []time.Duration
	url := t.base + "/api/v1/broadcasts?status=pending_review&limit=50"
	cursor := ""
	for range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+cursor, nil)
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+t.tokens["gd-cab"])
		start := time.Now()
		resp, err := t.client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		var page struct {
			Broadcasts []json.RawMessage `json:"broadcasts"`
			NextCursor string            `json:"next_cursor"`
		}
		err = json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&page)
		resp.Body.Close()
		samples = append(samples, time.Since(start))
		if err != nil || resp.StatusCode != http.StatusOK || len(page.Broadcasts) == 0 {
			return 0, 0, fmt.Errorf("review queue: %d, %d broadcasts, %v", resp.StatusCode, len(page.Broadcasts), err)
		}
		cursor = ""
		if page.NextCursor != "" && len(samples)%10 != 0 {
			cursor = "&cursor=" + page.NextCursor
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ms(bench.Percentile(samples, 50)), ms(bench.Percentile(samples, 99)), nil
}

// perBucketLine lists the buckets by bytes per broadcast, largest first.
func perBucketLine(per map[string]float64) string {
	names := slices.Collect(maps.Keys(per))
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(per[b], per[a]) })
	var line strings.Builder
	for _, name := range names {
		fmt.Fprintf(&line, " %s %.0f", name, per[name])
	}
	return line.String()
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// resetPeakRSS unmaps the store's pages and resets this process's peak
// resident set to its current one (Linux: clear_refs 5).
func resetPeakRSS(store *boltstore.DB) error {
	if err := store.TrimResident(); err != nil {
		return err
	}
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSSMB is this process's peak resident set (VmHWM), in MB.
func peakRSSMB() (float64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

func noEnvironment(string) string { return "" }
