package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
)

// goBuild compiles pkg into a binary named name, once per test binary
// run, and returns its path.
func goBuild(name, pkg string) func() (string, error) {
	return sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "tocsin-"+name)
		if err != nil {
			return "", err
		}
		bin := filepath.Join(dir, name)
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		return bin, nil
	})
}

// buildTocsin compiles the command once per test binary run.
var buildTocsin = goBuild("tocsin", ".")

// process is tocsin running as a child process, so it can be killed -9.
type process struct {
	cmd  *exec.Cmd
	base string
}

func startProcess(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	bin, err := buildTocsin()
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]string{}, args...), "--data", dir, "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "warn")
	cmd := exec.Command(bin, all...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd}
	t.Cleanup(func() { p.kill() })
	found := listeningAddr(stdout)
	select {
	case addr, ok := <-found:
		if !ok {
			t.Fatal("tocsin exited before listening")
		}
		p.base = addr
	case <-time.After(60 * time.Second):
		t.Fatal("tocsin did not start")
	}
	return p
}

func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// providerCreds reads one demo provider's NATS credentials.
func providerCreds(t *testing.T, dir, id string) (url string, creds nats.Option) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "demo-providers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]struct {
		URL   string `json:"url"`
		Creds string `json:"creds"`
	}
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatal(err)
	}
	return all[id].URL, mustCredsOption(t, all[id].Creds)
}

// drain pulls every dispatch waiting for a provider, acking each, and
// returns how often each broadcast id arrived.
func drain(t *testing.T, dir, provider string, want int) map[string]int {
	t.Helper()
	url, creds := providerCreds(t, dir, provider)
	nc, err := nats.Connect(url, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, "TOCSIN_DISPATCH", provider)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	total := 0
	for ctx.Err() == nil {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var d struct {
				BroadcastID string `json:"broadcast_id"`
			}
			if err := json.Unmarshal(m.Data(), &d); err != nil {
				t.Fatal(err)
			}
			seen[d.BroadcastID]++
			_ = m.Ack()
		}
		total += n
		if n == 0 && total >= want {
			break
		}
	}
	return seen
}

// The crash harness. Round after round, a real "tocsin demo" is started
// on one data folder, an emergency filed right after the start must reach
// both providers it concerns within 5 s, four clients then file
// emergencies as fast as the server takes them, and the process is killed
// with SIGKILL at a random moment of that burst. After the last round one
// more start, and an independent reader (each provider's own durable
// consumer, logged in with the provider's credentials) must have received
// every filing that was answered 201, each exactly once: no Nats-Msg-Id in
// the stream twice, no broadcast sent twice under different ids.
//
// TOCSIN_CRASH_ROUNDS sets the number of kills (3 by default; 20 for the
// long run). The kill moments come from a seed that is logged; set
// TOCSIN_CRASH_SEED to replay a run.
func TestKill9LosesNothingAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real process")
	}
	rounds := envInt(t, "TOCSIN_CRASH_ROUNDS", 3)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TOCSIN_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("TOCSIN_CRASH_SEED: %v", err)
		}
	}
	t.Logf("%d kill rounds, seed %d (replay with TOCSIN_CRASH_SEED=%d TOCSIN_CRASH_ROUNDS=%d)", rounds, seed, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 0))
	if _, err := buildTocsin(); err != nil { // not in the first start's figure
		t.Fatal(err)
	}
	began := time.Now()

	dir := t.TempDir()
	in := newProviderInbox(dir)
	guangzhou := []string{"cmcc", "cucc"} // the providers covering 440100
	accepted := map[string]string{}       // broadcast id -> content, every 201
	type roundFigures struct {
		started  time.Time     // when the process was started
		startup  time.Duration // until it listened
		probe    time.Duration // the probe's POST until JetStream stored it for both providers
		read     time.Duration // the probe's POST until both readers had it
		delay    time.Duration // burst start until the kill
		accepted int           // filings answered 201 in the burst
	}
	var figures []roundFigures
	for r := 0; r <= rounds; r++ {
		var f roundFigures
		f.started = time.Now()
		p := startProcess(t, dir, "demo", "--no-simulators")
		f.startup = time.Since(f.started)
		token := demoTokens(t, dir)["gd-met"]

		// The dispatcher publishes again after every start: an emergency
		// filed now reaches both providers within 5 s.
		// It is judged by when JetStream stored it for each provider: the
		// readers may first have the last burst's backlog to work through,
		// as a real provider would.
		pulls := in.pullAll(t, guangzhou...)
		content := fmt.Sprintf("【广东省气象局】重启后第 %d 条", r)
		sent := time.Now()
		id, status, body := fileDrill(p.base, token, content)
		if status != http.StatusCreated {
			t.Fatalf("round %d: the emergency filed after the start: %d %s", r, status, body)
		}
		accepted[id] = content
		if err := in.await(30*time.Second, []string{id}, guangzhou); err != nil {
			t.Fatalf("round %d: the emergency filed after the start (%s) was not delivered within 30 s: %v\n/readyz: %s",
				r, id, err, readyzBody(p.base))
		}
		f.read = time.Since(sent)
		f.probe = in.lastStored(id).Sub(sent)
		if f.probe > 5*time.Second {
			t.Errorf("round %d: the emergency filed after the start (%s) reached its providers' stream %s after it was sent, over 5 s",
				r, id, f.probe.Round(time.Millisecond))
		}
		pulls.stop(t)
		if r == rounds {
			figures = append(figures, f)
			// The last start: nothing accepted is missing from the store,
			// everything left in the outbox goes out, and every provider's
			// consumer has nothing more to deliver.
			for id, content := range accepted {
				got := call(t, "GET", p.base+"/api/v1/broadcasts/"+id, token, "")
				if got.status != http.StatusOK || got.body["content"] != content {
					t.Fatalf("accepted %s lost after kill -9: %d %v", id, got.status, got.body)
				}
			}
			in.finish(t, p.base, 60*time.Second, guangzhou)
			p.kill()
			break
		}

		// The burst, and a kill -9 at a random moment of it.
		f.delay = 100*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
		burst := fileBurst(p.base, token, r, 4)
		time.Sleep(f.delay) // the kill moment is the point: nothing to await
		p.kill()
		got, unexpected := burst.wait()
		if unexpected != "" {
			t.Errorf("round %d: a filing was answered neither 201 nor by a dropped connection: %s", r, unexpected)
		}
		for id, content := range got {
			accepted[id] = content
		}
		f.accepted = len(got)
		figures = append(figures, f)
		t.Logf("round %d: started in %s, emergency after the start published in %s (read in %s), %d filings accepted, killed %s into the burst",
			r, f.startup.Round(time.Millisecond), f.probe.Round(time.Millisecond), f.read.Round(time.Millisecond), f.accepted, f.delay.Round(time.Millisecond))
	}

	in.check(t, accepted, guangzhou)

	// The figures.
	total := 0
	var firsts []string
	for r, f := range figures {
		total += f.accepted
		var until time.Time
		if r+1 < len(figures) {
			until = figures[r+1].started
		}
		if first, ok := in.firstStoredBetween(f.started, until); ok {
			firsts = append(firsts, first.Sub(f.started).Round(time.Millisecond).String())
		} else {
			firsts = append(firsts, "none")
		}
	}
	t.Logf("%d kill rounds, %d filings accepted in bursts (%d with the emergencies filed after each start), %d dispatches read, %d redelivered by JetStream",
		rounds, total, len(accepted), in.count(), in.redeliveries())
	t.Logf("start to first new JetStream message, per start: %s", strings.Join(firsts, " "))
	t.Logf("total %s", time.Since(began).Round(time.Millisecond))
}

// TestCrashGracefulStopMidBurst stops Tocsin with SIGTERM in the middle of
// a burst, a few times over, and holds it to the same account as the
// kill -9 rounds: it exits cleanly within 5 s, and after a last start every
// 201 reached both providers exactly once. A stop cancels the relay while
// it waits on acknowledgements; nothing it was doing then may turn into a
// second dispatch.
func TestCrashGracefulStopMidBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real process")
	}
	const rounds = 4
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TOCSIN_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("TOCSIN_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with TOCSIN_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	in := newProviderInbox(dir)
	guangzhou := []string{"cmcc", "cucc"}
	accepted := map[string]string{}
	for r := range rounds {
		p := startProcess(t, dir, "demo", "--no-simulators")
		token := demoTokens(t, dir)["gd-met"]
		b := fileBurst(p.base, token, r, 4)
		delay := 300*time.Millisecond + time.Duration(rng.Int64N(int64(1200*time.Millisecond)))
		time.Sleep(delay) // the stop moment is the point: nothing to await
		stopping := time.Now()
		p.stopGracefully(t, 5*time.Second)
		got, unexpected := b.wait()
		if unexpected != "" {
			t.Errorf("round %d: a filing was answered neither 201 nor by a dropped connection: %s", r, unexpected)
		}
		for id, content := range got {
			accepted[id] = content
		}
		t.Logf("round %d: %d filings accepted, SIGTERM %s into the burst, exited in %s",
			r, len(got), delay.Round(time.Millisecond), time.Since(stopping).Round(time.Millisecond))
	}
	p := startProcess(t, dir, "demo", "--no-simulators")
	in.finish(t, p.base, 60*time.Second, guangzhou)
	p.kill()
	in.check(t, accepted, guangzhou)
	t.Logf("%d filings accepted over %d graceful stops, %d dispatches read", len(accepted), rounds, in.count())
}

// envInt reads a positive number from the environment, or gives def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// fileDrill files one typhoon emergency for Guangzhou (440100) as gd-met,
// and returns the new broadcast's id with the response.
func fileDrill(base, token, content string) (id string, status int, body string) {
	client := &http.Client{Timeout: 10 * time.Second}
	payload := fmt.Sprintf(`{"title":"t","content":%q,"scope":["440100"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"blue"}}`, content)
	req, err := http.NewRequest("POST", base+"/api/v1/broadcasts", strings.NewReader(payload))
	if err != nil {
		return "", 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err.Error()
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, err.Error()
	}
	var out struct {
		ID string `json:"id"`
	}
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(data, &out); err != nil || out.ID == "" {
			return "", 0, fmt.Sprintf("201 without an id: %s", data)
		}
	}
	return out.ID, resp.StatusCode, string(data)
}

// crashBurst is clients filing emergencies one after another until the server
// goes away under them.
type crashBurst struct {
	wg         sync.WaitGroup
	mu         sync.Mutex
	accepted   map[string]string // guarded by mu: id -> content of each 201
	unexpected string            // guarded by mu: the first answer other than 201
}

func fileBurst(base, token string, round, clients int) *crashBurst {
	b := &crashBurst{accepted: map[string]string{}}
	for c := range clients {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for i := 0; ; i++ {
				content := fmt.Sprintf("【广东省气象局】演练 %d-%d-%d", round, c, i)
				id, status, body := fileDrill(base, token, content)
				b.mu.Lock()
				switch status {
				case 0: // the connection went with the process
				case http.StatusCreated:
					b.accepted[id] = content
				default:
					if b.unexpected == "" {
						b.unexpected = fmt.Sprintf("%d %s", status, body)
					}
				}
				b.mu.Unlock()
				if status != http.StatusCreated {
					return
				}
			}
		}()
	}
	return b
}

// wait returns, once every client has stopped, what was accepted and the
// first unexpected answer, if any.
func (b *crashBurst) wait() (map[string]string, string) {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.accepted, b.unexpected
}

// readyzBody is /readyz's status and body, for failure messages.
func readyzBody(base string) string {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(data))
}

// received is one stream message as a provider's consumer delivered it.
type received struct {
	msgID     string
	broadcast string
	kind      string
	stored    time.Time // when JetStream stored it
}

// providerInbox reads dispatches the way a provider does, independently
// of Tocsin: from the provider's durable consumer, with the provider's
// credentials from demo-providers.json. It remembers every stream message
// it was given across restarts, by stream sequence, so that a redelivery
// (an ack lost to a kill) is told from a second message.
type providerInbox struct {
	dir string

	mu          sync.Mutex
	seen        map[string]map[uint64]received // guarded by mu: provider -> stream seq -> message
	redelivered int                            // guarded by mu
	lastErr     error                          // guarded by mu: the latest error a reader met
	changed     chan struct{}                  // guarded by mu: closed at every new message
}

func newProviderInbox(dir string) *providerInbox {
	return &providerInbox{dir: dir, seen: map[string]map[uint64]received{}, changed: make(chan struct{})}
}

// pulls is readers running for one start of the server.
type pulls struct {
	cancel context.CancelFunc
	done   []chan error
}

// pullAll starts reading each provider's consumer on the server now
// running (its URL is the one demo-providers.json names).
func (in *providerInbox) pullAll(t *testing.T, providers ...string) *pulls {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ps := &pulls{cancel: cancel}
	for _, provider := range providers {
		url, creds := providerCreds(t, in.dir, provider)
		nc, err := nats.Connect(url, creds, nats.NoReconnect())
		if err != nil {
			cancel()
			t.Fatalf("%s: connect: %v", provider, err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		lookup, cancelLookup := context.WithTimeout(ctx, 10*time.Second)
		cons, err := js.Consumer(lookup, natsbus.DispatchStream, provider)
		cancelLookup()
		if err != nil {
			nc.Close()
			cancel()
			t.Fatalf("%s: consumer: %v", provider, err)
		}
		done := make(chan error, 1)
		ps.done = append(ps.done, done)
		go func() {
			defer nc.Close()
			done <- in.pull(ctx, provider, cons)
		}()
	}
	t.Cleanup(func() { ps.cancel() })
	return ps
}

// pull fetches and acks until ctx ends. It never leaves a pull request
// open behind it: one delivered to a connection already closed would be
// redelivered only after the consumer's ack wait.
func (in *providerInbox) pull(ctx context.Context, provider string, cons jetstream.Consumer) error {
	for ctx.Err() == nil {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			in.failed(fmt.Errorf("%s: fetch: %w", provider, err))
			return err
		}
		for m := range batch.Messages() {
			if err := in.record(provider, m); err != nil {
				in.failed(err)
				return err
			}
			ackCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := m.DoubleAck(ackCtx)
			cancel()
			if err != nil {
				in.failed(fmt.Errorf("%s: ack: %w", provider, err))
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			in.failed(fmt.Errorf("%s: fetch: %w", provider, err))
			return err
		}
	}
	return nil
}

// stop ends the readers; it fails the test if one had stopped on an error.
func (ps *pulls) stop(t *testing.T) {
	t.Helper()
	ps.cancel()
	for _, done := range ps.done {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("a provider's reader stopped: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a provider's reader did not stop within 10 s")
		}
	}
}

func (in *providerInbox) record(provider string, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("%s: metadata: %w", provider, err)
	}
	var d struct {
		BroadcastID string `json:"broadcast_id"`
		Type        string `json:"type"`
	}
	if err := json.Unmarshal(m.Data(), &d); err != nil {
		return fmt.Errorf("%s: dispatch %d: %w", provider, meta.Sequence.Stream, err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.seen[provider] == nil {
		in.seen[provider] = map[uint64]received{}
	}
	if _, again := in.seen[provider][meta.Sequence.Stream]; again {
		in.redelivered++
		return nil
	}
	in.seen[provider][meta.Sequence.Stream] = received{
		msgID: m.Headers().Get(jetstream.MsgIDHeader), broadcast: d.BroadcastID, kind: d.Type, stored: meta.Timestamp,
	}
	close(in.changed)
	in.changed = make(chan struct{})
	return nil
}

func (in *providerInbox) failed(err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.lastErr = err
}

// has reports whether provider has received broadcast id.
func (in *providerInbox) has(provider, id string) bool {
	for _, m := range in.seen[provider] {
		if m.broadcast == id {
			return true
		}
	}
	return false
}

// await waits until every provider has received every broadcast in ids.
func (in *providerInbox) await(timeout time.Duration, ids, providers []string) error {
	deadline := time.After(timeout)
	for {
		in.mu.Lock()
		var missing []string
		for _, provider := range providers {
			for _, id := range ids {
				if !in.has(provider, id) {
					missing = append(missing, provider+":"+id)
				}
			}
		}
		changed, lastErr := in.changed, in.lastErr
		in.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-deadline:
			if len(missing) > 5 {
				missing = append(missing[:5], fmt.Sprintf("and %d more", len(missing)-5))
			}
			return fmt.Errorf("missing %s (readers' last error: %v)", strings.Join(missing, " "), lastErr)
		}
	}
}

// finish reads on the running server until its outbox is empty and each
// provider's consumer has nothing left to deliver or to be acked: then
// every message in the stream has been read.
func (in *providerInbox) finish(t *testing.T, base string, timeout time.Duration, providers []string) {
	t.Helper()
	pulls := in.pullAll(t, providers...)
	defer pulls.stop(t)
	began := time.Now()
	deadline := began.Add(timeout)
	for {
		backlog, pending, err := in.pending(base, providers)
		if err == nil && backlog == 0 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the outbox holds %d and the consumers %d undelivered or unacked (%v)\n/readyz: %s",
				timeout, backlog, pending, err, readyzBody(base))
		}
		time.Sleep(100 * time.Millisecond) // polling: JetStream has nothing to wait on for this
	}
	t.Logf("outbox empty and every dispatch read and acked %s after the last start's check", time.Since(began).Round(time.Millisecond))
}

// pending returns the outbox backlog /readyz reports and the messages the
// providers' consumers have not delivered, or not had acked, yet.
func (in *providerInbox) pending(base string, providers []string) (backlog, pending int, err error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		return -1, -1, err
	}
	var ready struct {
		Backlog *int `json:"outbox_backlog"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if err != nil || ready.Backlog == nil {
		return -1, -1, fmt.Errorf("readyz has no outbox_backlog: %v", err)
	}
	for _, provider := range providers {
		n, err := consumerPending(in.dir, provider)
		if err != nil {
			return *ready.Backlog, -1, err
		}
		pending += n
	}
	return *ready.Backlog, pending, nil
}

// consumerPending asks a provider's consumer, as the provider, how many
// messages it has not delivered or not had acknowledged.
func consumerPending(dir, provider string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "demo-providers.json"))
	if err != nil {
		return 0, err
	}
	var creds map[string]struct {
		URL   string `json:"url"`
		Creds string `json:"creds"`
	}
	if err := json.Unmarshal(data, &creds); err != nil {
		return 0, err
	}
	opt, err := natsbus.CredsOption(creds[provider].Creds)
	if err != nil {
		return 0, err
	}
	nc, err := nats.Connect(creds[provider].URL, opt, nats.NoReconnect())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, natsbus.DispatchStream, provider)
	if err != nil {
		return 0, err
	}
	info := cons.CachedInfo()
	return int(info.NumPending) + info.NumAckPending, nil
}

// check asserts what was read: every accepted broadcast reached every
// provider, no Nats-Msg-Id is in the stream twice, and no broadcast went to
// a provider twice under different ids.
func (in *providerInbox) check(t *testing.T, accepted map[string]string, providers []string) {
	t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, provider := range providers {
		seqsByID := map[string][]uint64{}
		idsByDispatch := map[string][]string{}
		got := map[string]bool{}
		for seq, m := range in.seen[provider] {
			seqsByID[m.msgID] = append(seqsByID[m.msgID], seq)
			key := m.broadcast + " " + m.kind
			idsByDispatch[key] = append(idsByDispatch[key], m.msgID)
			got[m.broadcast] = true
		}
		lost := 0
		for id := range accepted {
			if !got[id] {
				lost++
				if lost <= 10 {
					t.Errorf("%s never received accepted broadcast %s", provider, id)
				}
			}
		}
		if lost > 0 {
			t.Errorf("%s: %d of %d accepted broadcasts never received", provider, lost, len(accepted))
		}
		for id, seqs := range seqsByID {
			if len(seqs) > 1 {
				t.Errorf("%s: Nats-Msg-Id %s delivered as %d stream messages %v", provider, id, len(seqs), seqs)
			}
		}
		for key, ids := range idsByDispatch {
			if len(ids) > 1 {
				t.Errorf("%s: dispatch %s delivered under %d ids %v", provider, key, len(ids), ids)
			}
		}
	}
}

// lastStored is when JetStream stored broadcast id's dispatch for the
// last of the providers that received it.
func (in *providerInbox) lastStored(id string) time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	var last time.Time
	for _, seen := range in.seen {
		for _, m := range seen {
			if m.broadcast == id && m.stored.After(last) {
				last = m.stored
			}
		}
	}
	return last
}

// count is how many distinct stream messages were read, all providers.
func (in *providerInbox) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, seen := range in.seen {
		n += len(seen)
	}
	return n
}

func (in *providerInbox) redeliveries() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.redelivered
}

// firstStoredBetween is when JetStream stored the first message read that
// it stored at or after from and before until (zero: no end).
func (in *providerInbox) firstStoredBetween(from, until time.Time) (time.Time, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	var first time.Time
	for _, seen := range in.seen {
		for _, m := range seen {
			if m.stored.Before(from) || (!until.IsZero() && !m.stored.Before(until)) {
				continue
			}
			if first.IsZero() || m.stored.Before(first) {
				first = m.stored
			}
		}
	}
	return first, !first.IsZero()
}

func TestScheduledReleaseSurvivesRestartOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	dir := t.TempDir()
	// Filed on Friday 2026-09-18: the earliest send date is 2026-10-09.
	p := startProcess(t, dir, "demo", "--no-simulators", "--now", "2026-09-18T10:00:00+08:00")
	tokens := demoTokens(t, dir)
	filed := call(t, "POST", p.base+"/api/v1/broadcasts", tokens["gd-met"],
		`{"title":"防台风宣传","content":"【广东省气象局】台风季请关注预警信息。","scope":["440000"],"send_at":"2026-10-09T09:00:00+08:00"}`)
	if filed.status != http.StatusCreated {
		t.Fatalf("filing: %d %v", filed.status, filed.body)
	}
	id := filed.body["id"].(string)
	if got := call(t, "POST", p.base+"/api/v1/broadcasts/"+id+"/approve", tokens["gd-cab"], ""); got.status != http.StatusOK || got.body["status"] != "approved" {
		t.Fatalf("approve: %d %v", got.status, got.body)
	}
	p.kill()

	// Restart after the send time: the scheduler finds it and releases it.
	p = startProcess(t, dir, "demo", "--no-simulators", "--now", "2026-10-09T09:00:05+08:00")
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := call(t, "GET", p.base+"/api/v1/broadcasts/"+id, tokens["gd-met"], "")
		if got.body["status"] == "dispatching" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not released after restart: %v", got.body["status"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.kill()
	// And once more: a second restart must not release it again.
	p = startProcess(t, dir, "demo", "--no-simulators", "--now", "2026-10-09T09:10:00+08:00")
	time.Sleep(2 * time.Second) // give a wrong second release time to happen
	for _, provider := range []string{"cmcc", "cucc"} {
		if n := drain(t, dir, provider, 1)[id]; n != 1 {
			t.Errorf("%s received %s %d times, want once", provider, id, n)
		}
	}
}

func TestAuditVerifyFindsAFlippedByte(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators")
	tokens := demoTokens(t, dir)
	var ids []string
	for _, content := range []string{"【广东省气象局】第一条", "【广东省气象局】第二条"} {
		got := call(t, "POST", s.base+"/api/v1/broadcasts", tokens["gd-met"],
			fmt.Sprintf(`{"title":"t","content":%q,"scope":["440100"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"blue"}}`, content))
		if got.status != http.StatusCreated {
			t.Fatalf("filing: %d %v", got.status, got.body)
		}
		ids = append(ids, got.body["id"].(string))
	}
	// The record, not a dispatch still waiting in the outbox (which the
	// trail does not cover), must be the first copy of the content.
	deadline := time.Now().Add(15 * time.Second)
	for call(t, "GET", s.base+"/readyz", "", "").body["outbox_backlog"] != float64(0) {
		if time.Now().After(deadline) {
			t.Fatal("the outbox did not drain")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop()

	var out bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--data", dir}, noEnv, &out, io.Discard); err != nil {
		t.Fatalf("verify of an untouched store: %v", err)
	}
	if !strings.Contains(out.String(), "intact") {
		t.Fatalf("verify said %q", out.String())
	}

	db, err := os.ReadFile(filepath.Join(dir, "tocsin.db"))
	if err != nil {
		t.Fatal(err)
	}
	// A record's content, and a history event, which lives in the trail.
	for _, target := range []string{"第二条", "dispatched to"} {
		t.Run(target, func(t *testing.T) {
			i := bytes.Index(db, []byte(target))
			if i < 0 {
				t.Fatalf("%q not found in the data file", target)
			}
			copyDir := t.TempDir()
			tampered := bytes.Clone(db)
			tampered[i+len(target)-1] ^= 0x01
			if err := os.WriteFile(filepath.Join(copyDir, "tocsin.db"), tampered, 0o600); err != nil {
				t.Fatal(err)
			}
			err := run(context.Background(), []string{"audit", "verify", "--data", copyDir}, noEnv, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("verify passed a tampered store")
			}
			if !strings.Contains(err.Error(), "audit entry") && !strings.Contains(err.Error(), "record") {
				t.Fatalf("error does not name the entry: %v", err)
			}
			t.Logf("verify: %v", err)
		})
	}
	_ = ids
}

// mustCredsOption authenticates a connection with a .creds file's text.
func mustCredsOption(tb testing.TB, creds string) nats.Option {
	tb.Helper()
	opt, err := natsbus.CredsOption(creds)
	if err != nil {
		tb.Fatalf("credentials: %v", err)
	}
	return opt
}
