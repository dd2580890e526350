package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/provider"
)

// Actors of the demo directory that the tests act as.
var (
	gdMet = tocsin.Actor{Subject: "forecaster", Role: tocsin.RoleDepartment, Org: "gd-met",
		Level: tocsin.LevelProvincial, Jurisdiction: "440000"}
	gdCab = tocsin.Actor{Subject: "duty-officer", Role: tocsin.RoleRegulator, Org: "gd-cab",
		Level: tocsin.LevelProvincial, Jurisdiction: "440000"}
	admin = tocsin.Actor{Subject: "admin", Role: tocsin.RoleAdmin, Org: "admin",
		Level: tocsin.LevelNational, Jurisdiction: tocsin.National}
)

// Providers of the demo directory, plus "raw", which the tests read with a
// bare JetStream client.
var (
	cmcc = testkit.Provider("cmcc")
	cucc = testkit.Provider("cucc")
	ctcc = testkit.Provider("ctcc")
	raw  = tocsin.Provider{ID: "raw", Name: "Raw Test Provider", Regions: []string{"440000"}}
)

// coordinator is the coordinator's side wired as cmd/tocsin wires it: a
// Service on a real bbolt store, the embedded NATS server, and providers
// registered through the Registry.
type coordinator struct {
	*testNATS
	store      *boltstore.DB
	svc        *tocsin.Service
	registered map[string]natsbus.Credentials
	registry   *natsbus.Registry
	log        *slog.Logger
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newCoordinator(t *testing.T, providers ...tocsin.Provider) *coordinator {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	k := testkit.MustCoordinator(t, log, providers...)
	c := &coordinator{testNATS: fromKit(k.NATS), store: k.Store, svc: k.Service, registered: k.Creds, registry: k.Registry, log: log}
	for _, p := range providers {
		cr := c.registered[p.ID]
		if cr.User != p.ID || cr.Consumer != p.ID || cr.Stream != natsbus.DispatchStream || !strings.HasPrefix(cr.Creds, "-----BEGIN NATS USER JWT-----") {
			t.Fatalf("credentials for %s: %+v", p.ID, cr)
		}
		c.creds[p.ID] = cr.Creds
	}
	return c
}

// startDispatcher runs a Dispatcher wired as the coordinator wires it,
// after configure (its hooks, say) has had it. The
// returned function stops it and waits until Run has returned; cleanup
// calls it too.
func (c *coordinator) startDispatcher(t *testing.T, configure ...func(*natsbus.Dispatcher)) (*natsbus.Dispatcher, func()) {
	t.Helper()
	d := natsbus.NewDispatcher(c.bus, c.svc, c.log)
	c.svc.Published = d.Kick
	for _, f := range configure {
		f(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Dispatcher.Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return d, stop
}

// runProvider runs the reference provider client for id with handler h
// until the test ends.
func (c *coordinator) runProvider(t *testing.T, id string, h provider.Handler) {
	t.Helper()
	cr := c.registered[id]
	ctx, cancel := context.WithCancel(context.Background())
	client, err := provider.Connect(ctx, provider.Config{URL: cr.URL, ID: cr.Consumer, Creds: c.creds[id], Log: c.log})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("provider %s: Run: %v", id, err)
		}
		client.Close()
	})
}

// fileEmergency files a red typhoon warning for scope as gd-met.
func (c *coordinator) fileEmergency(t *testing.T, scope ...string) *tocsin.Broadcast {
	t.Helper()
	b, _, err := c.svc.File(testContext(t), gdMet, tocsin.Filing{
		Title:     "Typhoon red warning",
		Content:   "【广东省气象局】台风红色预警：请立即停止户外活动，留在安全场所。",
		Scope:     scope,
		Emergency: &tocsin.Emergency{Type: tocsin.NaturalDisaster, Event: "typhoon", Level: tocsin.Red},
	}, "")
	if err != nil {
		t.Fatalf("file emergency: %v", err)
	}
	if b.Status != tocsin.StatusDispatching {
		t.Fatalf("filed emergency is %s, want dispatching", b.Status)
	}
	return b
}

// waitBroadcast polls the broadcast until cond holds and returns it.
func (c *coordinator) waitBroadcast(t *testing.T, id, what string, cond func(*tocsin.Broadcast) bool) *tocsin.Broadcast {
	t.Helper()
	var b *tocsin.Broadcast
	waitFor(t, what, func() (bool, error) {
		got, err := c.svc.Get(context.Background(), admin, id)
		if err != nil {
			return false, err
		}
		b = got
		if cond(b) {
			return true, nil
		}
		return false, fmt.Errorf("broadcast %s is %s; providers %+v", b.ID, b.Status, b.Providers)
	})
	return b
}

func (c *coordinator) outboxLen(t *testing.T) int {
	t.Helper()
	var n int
	err := c.store.View(context.Background(), func(tx tocsin.ReadTx) error {
		var err error
		n, err = tx.OutboxLen()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// progress returns the broadcast's progress for one provider.
func progress(t *testing.T, b *tocsin.Broadcast, provider string) tocsin.ProviderProgress {
	t.Helper()
	for _, p := range b.Providers {
		if p.Provider == provider {
			return p
		}
	}
	t.Fatalf("broadcast %s has no progress for %s (providers %+v)", b.ID, provider, b.Providers)
	return tocsin.ProviderProgress{}
}

func hasProgress(b *tocsin.Broadcast, provider string, status tocsin.DeliveryStatus) bool {
	for _, p := range b.Providers {
		if p.Provider == provider {
			return p.Status == status
		}
	}
	return false
}

// waitFor polls cond every 10 ms until it holds, failing the test after
// 10 s with the last error cond returned.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
