package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/provider"
)

// testServer is Tocsin's embedded NATS server with the coordinator's side
// connected, in a folder that outlives a restart of it, on a port that
// stays the same across restarts (as the demo's does).
type testServer struct {
	dir      string
	listen   string
	keys     *natsbus.Keys
	acct     natsbus.ProviderAccount
	user     natsbus.UserCreds // the provider's user
	embedded *natsbus.Embedded
	bus      *natsbus.Bus
	resolver *natsbus.Resolver
}

// startServer starts the server with one provider, id: its account, a
// user (s.user) and its consumer.
func startServer(t *testing.T, id string) *testServer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nats")
	keys, err := natsbus.LoadKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := natsbus.NewProviderAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{dir: dir, listen: "127.0.0.1:0", keys: keys, acct: natsbus.ProviderAccount{ID: id, Account: key, Revoked: map[string]int64{}}}
	if s.user, err = keys.ProviderUser(s.acct, natsbus.ProviderLimits{}); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	s.pushAccount(t)
	// Later starts reuse the port the OS chose, so the client's one URL
	// finds the restarted server.
	_, port, err := net.SplitHostPort(strings.TrimPrefix(s.embedded.ClientURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	s.listen = "127.0.0.1:" + port
	if err := s.bus.EnsureProviderConsumer(testCtx(t), id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// pushAccount pushes the provider's account as it stands.
func (s *testServer) pushAccount(t *testing.T) {
	t.Helper()
	token, err := s.keys.ProviderAccountJWT(s.acct, natsbus.ProviderLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.resolver.Push(testCtx(t), token); err != nil {
		t.Fatal(err)
	}
}

func (s *testServer) start(t *testing.T) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	e, err := natsbus.StartEmbedded(s.dir, s.listen, s.keys, log)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := natsbus.Connect(e.ClientURL(), log, 1, e.CoordinatorOption())
	if err != nil {
		e.Shutdown()
		t.Fatal(err)
	}
	res, err := natsbus.ConnectResolver(testCtx(t), e.ClientURL(), s.keys, log)
	if err != nil {
		bus.Close()
		e.Shutdown()
		t.Fatal(err)
	}
	s.embedded, s.bus, s.resolver = e, bus, res
	if err := bus.EnsureStreams(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// stop shuts the server down, keeping its store for the next start.
func (s *testServer) stop() {
	if s.embedded == nil {
		return
	}
	s.resolver.Close()
	s.bus.Conn().Close()
	s.embedded.Shutdown()
	s.embedded, s.bus, s.resolver = nil, nil, nil
}

func (s *testServer) url() string { return "nats://" + s.listen }

// dispatch publishes a broadcast for provider id, as the relay does.
func (s *testServer) dispatch(t *testing.T, id, broadcast string) {
	t.Helper()
	data, err := json.Marshal(provider.Dispatch{BroadcastID: broadcast, Type: provider.TypeBroadcast,
		Content: "台风红色预警", Regions: []string{"440100"}, SendAt: time.Now(), Charge: "free"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.bus.JetStream().Publish(testCtx(t), natsbus.DispatchSubject(id), data,
		jetstream.WithMsgID(broadcast+".broadcast."+id)); err != nil {
		t.Fatal(err)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// logBuffer collects a logger's output for the test to read while the
// client writes.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer  // guarded by mu
	written chan struct{} // guarded by mu: closed and replaced at each write
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written != nil {
		close(b.written)
		b.written = nil
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the log holds want. Connection events are logged
// from the NATS client's callback goroutine, after the events themselves.
func (b *logBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		b.mu.Lock()
		found := strings.Contains(b.buf.String(), want)
		if b.written == nil {
			b.written = make(chan struct{})
		}
		written := b.written
		b.mu.Unlock()
		if found {
			return
		}
		select {
		case <-written:
		case <-deadline:
			t.Errorf("log lacks %q:\n%s", want, b.String())
			return
		}
	}
}

// running is a client's Run in the background.
type running struct {
	client *provider.Client
	done   chan error
	cancel context.CancelFunc
}

// run connects as id and runs h until the test ends.
func run(t *testing.T, url, id, creds string, log *slog.Logger, h provider.Handler) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := provider.Connect(ctx, provider.Config{URL: url, ID: id, Creds: creds, Log: log})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &running{client: c, done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- c.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		c.Close()
	})
	return r
}

// delivering is a Handler that reports each broadcast delivered and then
// passes its id on.
func delivering(got chan<- string) provider.Handler {
	return func(ctx context.Context, d provider.Dispatch, r *provider.Reporter) error {
		if err := r.Done(ctx, 1, 1, 1, 0, ""); err != nil {
			return err
		}
		got <- d.BroadcastID
		return nil
	}
}

func await(t *testing.T, got <-chan string, want string) {
	t.Helper()
	select {
	case id := <-got:
		if id != want {
			t.Fatalf("handled %s, want %s", id, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s was not handled within 30 s", want)
	}
}

// A server restart (same port, same store) must not leave the client
// connected to nothing: it reconnects, pulls again and reports again, and
// says so in its log.
func TestClientKeepsReceivingAcrossServerRestart(t *testing.T) {
	const id = "cmcc"
	s := startServer(t, id)
	creds := s.user.Text
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	got := make(chan string, 4)
	run(t, s.url(), id, creds, log, delivering(got))

	s.dispatch(t, id, "BC000001")
	await(t, got, "BC000001")

	s.stop()
	s.start(t)
	s.dispatch(t, id, "BC000002")
	await(t, got, "BC000002")

	for _, want := range []string{
		`msg="dispatch received" provider=cmcc broadcast=BC000001`,
		`msg="receipt sent" provider=cmcc broadcast=BC000001 status=received`,
		`msg="receipt sent" provider=cmcc broadcast=BC000002 status=delivered`,
		`level=WARN msg="disconnected from NATS; reconnecting" provider=cmcc`,
		`level=INFO msg="reconnected to NATS" provider=cmcc`,
	} {
		logs.waitFor(t, want)
	}
}

// A consumer deleted and made again (as a re-registration does) ends the
// client's pull; it must find the new consumer and keep receiving.
func TestClientKeepsReceivingWhenItsConsumerIsRecreated(t *testing.T) {
	const id = "cucc"
	s := startServer(t, id)
	creds := s.user.Text
	got := make(chan string, 4)
	run(t, s.url(), id, creds, slog.New(slog.DiscardHandler), delivering(got))
	s.dispatch(t, id, "BC000001")
	await(t, got, "BC000001")

	if err := s.bus.JetStream().DeleteConsumer(testCtx(t), natsbus.DispatchStream, id); err != nil {
		t.Fatal(err)
	}
	if err := s.bus.EnsureProviderConsumer(testCtx(t), id); err != nil {
		t.Fatal(err)
	}
	// The new consumer delivers everything in the stream: the first
	// broadcast again (dropped as a redelivery) and then the new one.
	s.dispatch(t, id, "BC000002")
	await(t, got, "BC000002")
}

// Wrong credentials end Run with an error that says what is wrong and
// what to do, instead of a client that retries in silence for ever.
func TestClientGivesUpOnRefusedCredentials(t *testing.T) {
	const id = "ctcc"
	s := startServer(t, id)
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	began := time.Now()
	// A user of an account this server does not know, signed by keys it
	// does not trust.
	stranger, err := natsbus.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := stranger.ProviderUser(s.acct, natsbus.ProviderLimits{})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, s.url(), id, wrong.Text, log, delivering(make(chan string, 1)))
	assertRefused(t, r, began)
	logs.waitFor(t, `level=ERROR msg="NATS refused the credentials; giving up" provider=ctcc error="nats: Authorization Violation"`)
}

// A provider revoked while connected (tocsin provider revoke or rotate)
// is cut off by the server; the client must notice and stop.
func TestClientGivesUpWhenRevokedWhileConnected(t *testing.T) {
	const id = "cmcc"
	s := startServer(t, id)
	creds := s.user.Text
	got := make(chan string, 1)
	r := run(t, s.url(), id, creds, slog.New(slog.DiscardHandler), delivering(got))
	s.dispatch(t, id, "BC000001")
	await(t, got, "BC000001")

	began := time.Now()
	s.acct.Revoked[s.user.Key] = time.Now().Unix()
	s.pushAccount(t)
	assertRefused(t, r, began)
}

func assertRefused(t *testing.T, r *running, began time.Time) {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if !errors.Is(err, provider.ErrCredentialsRefused) || !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("Run = %v, want ErrCredentialsRefused wrapping nats.ErrAuthorization", err)
		}
		for _, want := range []string{"credentials refused by NATS", "tocsin provider rotate"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Run error %q does not say %q", err, want)
			}
		}
		t.Log(fmt.Sprintf("gave up after %s: %v", time.Since(began).Round(time.Millisecond), err))
	case <-time.After(20 * time.Second):
		t.Fatal("Run still retrying refused credentials after 20 s")
	}
}

// Shutting down mid-send cancels the send and waits for it, and the
// receipt Tocsin last sees says why the public did not all get it.
func TestRunWaitsForSendsAndReportsThemOnShutdown(t *testing.T) {
	const id = "cmcc"
	s := startServer(t, id)
	creds := s.user.Text
	sending := make(chan struct{})
	returned := make(chan struct{})
	r := run(t, s.url(), id, creds, slog.New(slog.DiscardHandler),
		func(ctx context.Context, d provider.Dispatch, rep *provider.Reporter) error {
			defer close(returned)
			if err := rep.Progress(ctx, 100, 40, 40, 0); err != nil {
				return err
			}
			close(sending)
			<-ctx.Done()
			return ctx.Err()
		})
	s.dispatch(t, id, "BC000001")
	select {
	case <-sending:
	case <-time.After(30 * time.Second):
		t.Fatal("the dispatch was not handled")
	}
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Fatalf("Run after cancel = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	select {
	case <-returned:
	default:
		t.Fatal("Run returned before the handler did")
	}
	stream, err := s.bus.JetStream().Stream(testCtx(t), natsbus.ReceiptStream)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLastMsgForSubject(testCtx(t), natsbus.ReceiptSubject(id))
	if err != nil {
		t.Fatal(err)
	}
	var rc provider.Receipt
	if err := json.Unmarshal(last.Data, &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Status != provider.StatusFailed || rc.Sent != 40 || !strings.Contains(rc.Detail, "shut down") {
		t.Fatalf("last receipt = %+v, want failed after 40 sent, saying the provider shut down", rc)
	}
}
