package main

// BenchmarkEmergencyPath holds the emergency path to its budget: within 2x
// of the raw durable chain in latency and at least half its throughput.
// Both are measured in the same run on the same disk, taking turns (see
// internal/bench), so the figures are ratios, not absolute numbers that
// depend on the machine. "tocsin bench" is the full comparison, against
// the batched raw chain too; this is its quick check.
//
//	go test -run '^$' -bench EmergencyPath -benchtime 1x ./cmd/tocsin/
//
// The raw durable chain (bench.Raw) is the least any durable dispatch must
// do: HTTP in, one group-committed bbolt fsync, its 201, one acknowledged
// JetStream publish per provider to a file stream that syncs every write,
// received by durable pull consumers. The emergency path is an in-process
// "tocsin demo --no-simulators": an emergency for 440100 filed as gd-met
// over HTTP until both its providers' consumers (cmcc and cucc) have it.
//
// With TOCSIN_BENCH_STRICT set, missing either target fails the benchmark.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/bench"
)

func BenchmarkEmergencyPath(b *testing.B) {
	if testing.Short() {
		b.Skip("starts embedded NATS servers and a demo coordinator")
	}
	// One measurement per run whatever b.N: the bench package times its
	// own samples.
	ctx := context.Background()
	raw, err := bench.StartRaw(ctx, bench.RawConfig{Name: "RAW", Dir: b.TempDir(), Providers: []string{"p1", "p2"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(raw.Close)
	t, err := startBenchTocsin(ctx, b.TempDir(), 32, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(t.stop)
	tch, consumed, err := t.chain(ctx, nil)
	for _, cc := range consumed {
		b.Cleanup(cc.Stop)
	}
	if err != nil {
		b.Fatal(err)
	}
	chains := []bench.Chain{raw.Chain, tch}
	if _, err := bench.Latency(ctx, chains, 20, 1); err != nil {
		b.Fatal(err)
	}
	lat, err := bench.Latency(ctx, chains, 200, 8)
	if err != nil {
		b.Fatal(err)
	}
	tput, err := bench.Throughput(ctx, chains, 2000, 4, 32)
	if err != nil {
		b.Fatal(err)
	}
	latency := float64(lat[1].P50) / float64(lat[0].P50)
	throughput := tput[1] / tput[0]
	b.Logf("raw chain: p50 %s, p99 %s, %.0f/s", bench.Ms(lat[0].P50), bench.Ms(lat[0].P99), tput[0])
	b.Logf("emergency: p50 %s, p99 %s, %.0f/s", bench.Ms(lat[1].P50), bench.Ms(lat[1].P99), tput[1])
	b.Logf("latency ratio (emergency/raw p50): %.2f  (target <= 2.0)", latency)
	b.Logf("throughput ratio (emergency/raw): %.2f    (target >= 0.5)", throughput)
	b.ReportMetric(latency, "latency-x")
	b.ReportMetric(throughput, "throughput-x")
	b.ReportMetric(float64(lat[0].P50.Microseconds())/1000, "raw-p50-ms")
	b.ReportMetric(float64(lat[1].P50.Microseconds())/1000, "emergency-p50-ms")
	b.ReportMetric(tput[0], "raw-msg/s")
	b.ReportMetric(tput[1], "emergency-msg/s")
	if os.Getenv("TOCSIN_BENCH_STRICT") != "" && (latency > 2 || throughput < 0.5) {
		b.Errorf("emergency path misses its budget: latency %.2fx (<= 2), throughput %.2fx (>= 0.5)", latency, throughput)
	}
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

// "tocsin bench --only" measures one chain's throughput alone, for
// profiling one chain without the others' work; a name it does not know
// is a usage error.
func TestBenchOnlyOneChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts embedded NATS servers and a demo coordinator")
	}
	var out strings.Builder
	tracePath := filepath.Join(t.TempDir(), "bench.trace")
	err := runBench(context.Background(), []string{"--only", "Tocsin", "--throughput", "200", "--clients", "4", "--providers", "2", "--trace", tracePath}, &out, io.Discard)
	if err != nil {
		t.Fatalf("bench --only Tocsin: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "throughput of Tocsin alone, 4 clients, 200 filings (rounds: 1)") || !strings.HasSuffix(lines[0], "/s") ||
		!strings.HasPrefix(lines[1], "CPU per filing, the whole process") || !strings.HasSuffix(lines[1], "µs system") ||
		!strings.HasPrefix(lines[2], "allocated per filing, the whole process: ") || !strings.HasSuffix(lines[2], " KB") {
		t.Errorf("bench --only Tocsin printed %q", out.String())
	}
	if fi, err := os.Stat(tracePath); err != nil || fi.Size() == 0 {
		t.Errorf("bench --trace wrote no trace: %v", err)
	}
	if err := runBench(context.Background(), []string{"--only", "tocsin"}, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("bench --only tocsin: %v, want a usage error", err)
	}
}
