package natsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/provider"
)

// The keys are created once, 0600 in a 0700 folder, and read back the
// same at the next start.
func TestKeysAre0600AndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	first, err := natsbus.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := natsbus.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if first.OperatorKey() != again.OperatorKey() || first.SystemAccount() != again.SystemAccount() ||
		first.CoordinatorAccountKey() != again.CoordinatorAccountKey() {
		t.Error("the keys changed between two loads")
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("keys folder is %v, want 0700", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("keys folder holds %d files, want 4", len(entries))
	}
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "operator.nk"), []byte("SAnot-an-operator\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := natsbus.LoadKeys(dir); err == nil {
		t.Error("a damaged operator key loaded")
	}
}

// watch connects with creds and reports when the server closes the
// connection, and why.
func watch(t *testing.T, url, creds string) (*nats.Conn, <-chan error) {
	t.Helper()
	opt, err := natsbus.CredsOption(creds)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	nc, err := nats.Connect(url, opt, nats.NoReconnect(),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
		nats.ClosedHandler(func(nc *nats.Conn) { closed <- nc.LastError() }))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc, closed
}

func refused(t *testing.T, url, creds, what string) {
	t.Helper()
	opt, err := natsbus.CredsOption(creds)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opt, nats.NoReconnect())
	if err == nil {
		nc.Close()
		t.Fatalf("%s: connected", what)
	}
	if !errors.Is(err, nats.ErrAuthorization) && !errors.Is(err, nats.ErrAuthRevoked) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("%s: %v, want an authorization error", what, err)
	}
}

func awaitClosed(t *testing.T, closed <-chan error, since time.Time, what string) {
	t.Helper()
	select {
	case err := <-closed:
		t.Logf("%s: closed %v after the change: %v", what, time.Since(since).Round(time.Millisecond), err)
	case <-time.After(2 * time.Second):
		t.Fatalf("%s: connection still open 2 s after the change", what)
	}
}

// A revoked provider is cut off at once and cannot come back; rotating
// gives it new credentials (the old stay refused) in the same account.
func TestRevokeAndRotate(t *testing.T) {
	c := newCoordinator(t, cmcc, cucc)
	ctx := testContext(t)
	url := c.embedded.ClientURL()
	_, closed := watch(t, url, c.creds["cmcc"])
	other, otherClosed := watch(t, url, c.creds["cucc"])

	began := time.Now()
	if err := c.registry.Revoke(ctx, "cmcc"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	awaitClosed(t, closed, began, "cmcc revoked")
	refused(t, url, c.creds["cmcc"], "cmcc after its revocation")
	t.Logf("revocation pushed in %v", took)
	if err := other.Flush(); err != nil {
		t.Fatalf("cucc, not revoked, lost its connection: %v", err)
	}
	select {
	case err := <-otherClosed:
		t.Fatalf("cucc's connection closed: %v", err)
	default:
	}
	stored := c.provider(t, "cmcc")
	if stored.NATSUserKey != "" || stored.NATSAccount == "" {
		t.Fatalf("after revoke: user %q account %q", stored.NATSUserKey, stored.NATSAccount)
	}

	cr, err := c.registry.Rotate(ctx, "cmcc")
	if err != nil {
		t.Fatal(err)
	}
	if cr.Account != stored.NATSAccount || cr.Creds == c.creds["cmcc"] || !strings.HasPrefix(cr.Creds, "-----BEGIN NATS USER JWT-----") {
		t.Fatalf("rotated credentials: %+v", cr)
	}
	refused(t, url, c.creds["cmcc"], "cmcc's first credentials after the rotation")
	old := c.creds["cmcc"]
	c.creds["cmcc"] = cr.Creds
	n := c.testNATS
	n.publish(t, "cmcc", "BC1")
	pullOne(t, c.connect(t, "cmcc"), "cmcc")

	// Rotating again revokes the second credentials, at once.
	_, closed = watch(t, url, cr.Creds)
	began = time.Now()
	third, err := c.registry.Rotate(ctx, "cmcc")
	if err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, closed, began, "cmcc's second credentials, rotated")
	for _, creds := range []string{old, cr.Creds} {
		refused(t, url, creds, "rotated-out credentials")
	}
	c.creds["cmcc"] = third.Creds
	c.connect(t, "cmcc")

	for _, f := range []func() error{
		func() error { return c.registry.Revoke(ctx, "nobody") },
		func() error { _, err := c.registry.Rotate(ctx, "nobody"); return err },
		func() error { return c.registry.SetDisabled(ctx, "nobody", true) },
	} {
		if err := f(); !tocsin.IsCode(err, tocsin.CodeNotFound) {
			t.Errorf("an unknown provider: %v, want not_found", err)
		}
	}
}

// pullOne does what the nats CLI's consumer next does, with its default
// settings: $JS.API.INFO, the consumer's info, one pull request, an ack.
func pullOne(t *testing.T, nc *nats.Conn, id string) {
	t.Helper()
	req := func(subject string, body []byte) *nats.Msg {
		t.Helper()
		m, err := nc.Request(subject, body, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		var e struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if json.Unmarshal(m.Data, &e) == nil && e.Error != nil {
			t.Fatalf("%s: %s", subject, e.Error.Description)
		}
		return m
	}
	req("$JS.API.INFO", nil)
	req("$JS.API.CONSUMER.INFO."+natsbus.DispatchStream+"."+id, nil)
	m := req("$JS.API.CONSUMER.MSG.NEXT."+natsbus.DispatchStream+"."+id, []byte(`{"batch":1,"expires":5000000000}`))
	if m.Subject != natsbus.DispatchSubject(id) || !strings.HasPrefix(m.Reply, "$JS.ACK."+natsbus.DispatchStream+"."+id+".") {
		t.Fatalf("pulled %s (reply %s), want a dispatch for %s", m.Subject, m.Reply, id)
	}
	if _, err := nc.Request(m.Reply, []byte("+ACK"), 5*time.Second); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

// The stock client path: a .creds file given by its path, as nats
// --creds FILE reads it, and the requests consumer next makes.
func TestCredsFileWithTheStockClient(t *testing.T) {
	c := newCoordinator(t, cmcc)
	file := filepath.Join(t.TempDir(), "cmcc.creds")
	if err := os.WriteFile(file, []byte(c.creds["cmcc"]), 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(c.embedded.ClientURL(), nats.UserCredentials(file))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.publish(t, "cmcc", "BC1")
	pullOne(t, nc, "cmcc")
	info := consumerInfo(t, c.bus.JetStream(), "cmcc")
	if info.AckFloor.Consumer != 1 || info.NumAckPending != 0 {
		t.Errorf("cmcc's consumer after the ack: ack floor %d, pending acks %d", info.AckFloor.Consumer, info.NumAckPending)
	}
}

// A disabled provider's dispatches wait in the outbox while others' go
// out; enabled again, it gets them.
func TestDisabledProviderWaits(t *testing.T) {
	c := newCoordinator(t, cmcc, cucc)
	d, _ := c.startDispatcher(t)
	received := make(chan string, 4)
	for _, id := range []string{"cmcc", "cucc"} {
		c.runProvider(t, id, func(ctx context.Context, disp provider.Dispatch, r *provider.Reporter) error {
			received <- id + "/" + disp.BroadcastID
			return r.Done(ctx, 1, 1, 1, 0, "")
		})
	}
	ctx := testContext(t)
	if err := c.registry.SetDisabled(ctx, "cmcc", true); err != nil {
		t.Fatal(err)
	}
	d.Hold("cmcc", true)
	first := c.fileEmergency(t, "440100")
	second := c.fileEmergency(t, "440100")
	for range 2 {
		select {
		case got := <-received:
			if !strings.HasPrefix(got, "cucc/") {
				t.Fatalf("%s received while disabled", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("cucc received nothing while cmcc was disabled")
		}
	}
	c.waitBroadcast(t, second.ID, "cucc delivered", func(b *tocsin.Broadcast) bool { return hasProgress(b, "cucc", tocsin.DeliveryDelivered) })
	if n := c.outboxLen(t); n != 2 {
		t.Fatalf("outbox holds %d, want cmcc's 2 dispatches", n)
	}
	if age, n, err := d.OldestOutbox(ctx); err != nil || age != 0 || n != 2 {
		t.Errorf("OldestOutbox = %v, %d, %v; want no age (held on purpose) and 2 waiting", age, n, err)
	}
	if p := progress(t, c.waitBroadcast(t, first.ID, "read", func(*tocsin.Broadcast) bool { return true }), "cmcc"); p.Status != tocsin.DeliveryQueued {
		t.Errorf("cmcc's progress while disabled: %s, want queued", p.Status)
	}
	if !c.provider(t, "cmcc").Disabled {
		t.Error("the store does not say cmcc is disabled")
	}

	if err := c.registry.SetDisabled(ctx, "cmcc", false); err != nil {
		t.Fatal(err)
	}
	d.Hold("cmcc", false)
	got := map[string]bool{}
	for range 2 {
		select {
		case id := <-received:
			got[id] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("cmcc, enabled again, received only %v", got)
		}
	}
	if !got["cmcc/"+first.ID] || !got["cmcc/"+second.ID] {
		t.Errorf("cmcc received %v, want both broadcasts", got)
	}
}

// A data folder from before NATS accounts were JWTs: its providers have
// passwords. Sync converts each to an account and a user, once, and the
// new credentials pull.
func TestPasswordEraProvidersAreConverted(t *testing.T) {
	c := newCoordinator(t)
	ctx := testContext(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("an-old-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	err = c.store.Update(ctx, func(tx tocsin.Tx) error {
		for _, id := range []string{"cmcc", "tocsin"} {
			p := &tocsin.Provider{ID: id, Name: id, Regions: []string{"440000"}, NATSUser: id, NATSPasswordHash: string(hash)}
			if err := tx.PutProvider(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	converted, err := c.registry.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(converted) != 1 || converted["cmcc"].Creds == "" {
		t.Fatalf("converted %v, want cmcc alone (tocsin is a reserved id)", converted)
	}
	p := c.provider(t, "cmcc")
	if p.NATSPasswordHash != "" || p.NATSAccount == "" || p.NATSUserKey != converted["cmcc"].UserKey {
		t.Fatalf("cmcc after conversion: %+v", p)
	}
	if err := c.bus.EnsureProviderConsumer(ctx, "cmcc"); err != nil {
		t.Fatal(err)
	}
	c.creds["cmcc"] = converted["cmcc"].Creds
	c.publish(t, "cmcc", "BC1")
	pullOne(t, c.connect(t, "cmcc"), "cmcc")
	if again, err := c.registry.Sync(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second Sync converted %v (%v), want nothing", again, err)
	}
	// The converted provider's credentials still work after the Sync of
	// a restart.
	c.connect(t, "cmcc")
}

func (c *coordinator) provider(t *testing.T, id string) *tocsin.Provider {
	t.Helper()
	var p *tocsin.Provider
	err := c.store.View(context.Background(), func(tx tocsin.ReadTx) error {
		var err error
		p, err = tx.Provider(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The streams of a password-era embedded server (account TOCSIN by name)
// are found again by the JWT-era server: a dispatch published then and
// not yet pulled is still there.
func TestPasswordEraStreamsAreKept(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	store := filepath.Join(dir, "jetstream")
	old := "host: 127.0.0.1\nport: -1\njetstream { store_dir: " + strconv.Quote(store) + " }\n" +
		"accounts { TOCSIN { jetstream: enabled\n users: [ { user: tocsin, password: old } ] } }\n"
	if err := os.WriteFile(conf, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("password-era server not ready")
	}
	bus, err := natsbus.Connect(srv.ClientURL(), slog.New(slog.DiscardHandler), 1, nats.UserInfo("tocsin", "old"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	if err := bus.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.JetStream().Publish(ctx, natsbus.DispatchSubject("cmcc"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	bus.Close()
	srv.Shutdown()
	srv.WaitForShutdown()

	e, _ := testkit.MustEmbedded(t, dir, slog.New(slog.DiscardHandler))
	bus, err = natsbus.Connect(e.ClientURL(), slog.New(slog.DiscardHandler), 1, e.CoordinatorOption())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if got := subjectCounts(t, bus.JetStream(), natsbus.DispatchStream)[natsbus.DispatchSubject("cmcc")]; got != 1 {
		t.Fatalf("the JWT-era server holds %d of the password era's dispatches for cmcc, want 1", got)
	}
}
