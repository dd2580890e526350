// Package testkit wires real Tocsin parts for tests, and is for tests only:
// no production code imports it. Its MustX helpers build what several
// packages' tests share (a bbolt store in a temporary folder, a Service on
// it with the embedded calendar and a settable clock, the demo directory of
// package demo, an embedded NATS server on a loopback port with the
// coordinator connected) and undo it with tb.Cleanup when the test ends.
// Anything a test fails to build stops that test with tb.Fatal.
//
// What only one package's tests need (an httptest server, a TLS flag, fault
// injection) stays in that package, built on the kit.
package testkit

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/demo"
	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// setupTimeout bounds each thing a helper does over the store or NATS.
const setupTimeout = 20 * time.Second

// Logger logs WARN and above to the test's output, so that it shows with
// a failure (or with -v) and is silent otherwise.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Clock is a clock that stands still until the test sets or advances it.
// It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the time last set.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set makes the clock read t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// MustStore opens a bbolt store in a fresh temporary folder; it is closed,
// and a failure to close reported, when the test ends.
func MustStore(tb testing.TB, log *slog.Logger) *boltstore.DB {
	tb.Helper()
	store, err := boltstore.Open(filepath.Join(tb.TempDir(), "tocsin.db"), region.Default(), log)
	if err != nil {
		tb.Fatalf("boltstore.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := store.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return store
}

// embeddedCalendar is loaded once: a Calendar is immutable and safe for
// concurrent use, and every test wants the same one.
var embeddedCalendar = sync.OnceValues(func() (*calendar.Calendar, error) { return calendar.Load("") })

// MustCalendar returns the calendar built from the embedded calendar files.
func MustCalendar(tb testing.TB) *calendar.Calendar {
	tb.Helper()
	cal, err := embeddedCalendar()
	if err != nil {
		tb.Fatalf("calendar.Load: %v", err)
	}
	return cal
}

// MustService returns a Service on store with the default GB/T 2260
// regions, the embedded calendar, clock and the default post-hoc deadline,
// as cmd/tocsin wires it. Its Published hook is unset.
func MustService(tb testing.TB, store tocsin.Store, clock tocsin.Clock) *tocsin.Service {
	tb.Helper()
	return &tocsin.Service{
		Store: store, Calendar: MustCalendar(tb), Regions: region.Default(), Clock: clock,
		PostHocWorkingDays: tocsin.DefaultPostHocWorkingDays,
	}
}

// Seed says what MustSeed puts in the store.
type Seed uint

// What MustSeed can seed; combine with |.
const (
	// Organisations are the demo organisations, created at the service
	// clock's time.
	Organisations Seed = 1 << iota
	// Providers are the demo providers as store records only: no NATS
	// login and no consumer (MustCoordinator registers providers).
	Providers
	// Logins are a web account for every demo organisation, username its
	// id and password demo.Password; they imply Organisations.
	Logins

	// Directory is the whole demo directory, without web logins.
	Directory = Organisations | Providers
)

// loginHash is demo.Password's hash, made once: argon2id is slow on
// purpose.
var loginHash = sync.OnceValues(func() (string, error) { return auth.HashPassword(demo.Password) })

// MustSeed seeds what of the demo directory is asked for through svc.
func MustSeed(tb testing.TB, svc *tocsin.Service, what Seed) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	now := svc.Clock.Now()
	if what&(Organisations|Logins) != 0 {
		for _, o := range demo.Organisations() {
			o.CreatedAt = now
			var acct *tocsin.Account
			if what&Logins != 0 {
				hash, err := loginHash()
				if err != nil {
					tb.Fatalf("hash the demo password: %v", err)
				}
				acct = &tocsin.Account{Username: o.ID, Org: o.ID, PasswordHash: hash, CreatedAt: now}
			}
			if err := svc.PutOrganisation(ctx, o, acct); err != nil {
				tb.Fatalf("seed organisation %s: %v", o.ID, err)
			}
		}
	}
	if what&Providers != 0 {
		for _, p := range demo.Providers() {
			p.CreatedAt = now
			if err := svc.PutProvider(ctx, p); err != nil {
				tb.Fatalf("seed provider %s: %v", p.ID, err)
			}
		}
	}
}

// Actor is the caller a demo organisation's own token or login acts as.
func Actor(tb testing.TB, org string) tocsin.Actor {
	tb.Helper()
	o, ok := demo.Organisation(org)
	if !ok {
		tb.Fatalf("no organisation %q in the demo directory", org)
	}
	return demo.Actor(o)
}

// Provider returns the demo provider with the given id, for a test's
// package-level variables; it panics on an id the directory lacks.
func Provider(id string) tocsin.Provider {
	for _, p := range demo.Providers() {
		if p.ID == id {
			return p
		}
	}
	panic("testkit: no provider " + id + " in the demo directory")
}

// Operator is the actor the coordinator's own tooling acts as (the demo's
// token issuer): the stored admin organisation.
var Operator = tocsin.Actor{Subject: "testkit", Role: tocsin.RoleAdmin, Org: tocsin.OperatorOrg,
	Level: tocsin.LevelNational, Jurisdiction: tocsin.National}

// MustToken issues a stored service token for org through svc, as the
// operator, and signs it with keys; ttl 0 is an hour. The organisation must
// be stored (MustSeed). The JWT claims the organisation's stored role,
// level and jurisdiction, though the server reads them from the store.
func MustToken(tb testing.TB, svc *tocsin.Service, keys *auth.Keys, org string, ttl time.Duration) string {
	tb.Helper()
	tok, _ := MustTokenID(tb, svc, keys, org, ttl)
	return tok
}

// MustTokenID is MustToken that also returns the token's credential id.
func MustTokenID(tb testing.TB, svc *tocsin.Service, keys *auth.Keys, org string, ttl time.Duration) (string, string) {
	tb.Helper()
	if ttl == 0 {
		ttl = time.Hour
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	now := time.Now()
	c, o, err := svc.IssueToken(ctx, Operator, tocsin.TokenRequest{Org: org, TTL: ttl, Now: now})
	if err != nil {
		tb.Fatalf("issue a token for %s: %v", org, err)
	}
	tok, err := keys.IssueKind(tocsin.CredentialService, c.ID, demo.Actor(*o), now, ttl)
	if err != nil {
		tb.Fatalf("sign a token for %s: %v", org, err)
	}
	return tok, c.ID
}

// FreePort asks the OS for a free loopback port, for a listener whose
// port must be known before it starts (each node of a cluster lists every
// node's route port); the port is free again for the instant until its
// listener binds it.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
