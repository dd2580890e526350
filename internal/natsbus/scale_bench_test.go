package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/provider"
)

// BenchmarkRegistration registers 1,000 providers (TOCSIN_BENCH_PROVIDERS
// to change it) one after another through the Registry against the
// embedded server, as POST /api/v1/providers does, and prints each
// registration's p50, p99 and maximum, the first hundred against the last
// hundred, the total, and the process's heap per provider account; then
// files one emergency covering all of them, with every provider simulated
// in process by the provider package, and prints the time from the filing
// (the 201) to the last provider's receipt.
//
//	go test -run '^$' -bench Registration -benchtime 1x ./internal/natsbus/
func BenchmarkRegistration(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("TOCSIN_BENCH_PROVIDERS")); err == nil && v > 0 {
		n = v
	}
	log := slog.New(slog.DiscardHandler)
	k := testkit.MustCoordinator(b, log)
	ctx := context.Background()

	heapBefore := heapInUse()
	took := make([]time.Duration, n)
	creds := make([]natsbus.Credentials, n)
	began := time.Now()
	for i := range n {
		p := tocsin.Provider{ID: fmt.Sprintf("p%04d", i), Name: fmt.Sprintf("Provider %d", i), Regions: []string{"440000"}}
		t0 := time.Now()
		cr, err := k.Registry.Register(ctx, p)
		took[i] = time.Since(t0)
		if err != nil {
			b.Fatalf("register %s: %v", p.ID, err)
		}
		creds[i] = cr
	}
	total := time.Since(began)
	heapAfter := heapInUse()
	// The server loads an account from its resolver when a client of it
	// first connects: connect once as each provider, so the accounts are
	// in its memory, and measure again.
	for _, cr := range creds {
		opt, err := natsbus.CredsOption(cr.Creds)
		if err != nil {
			b.Fatal(err)
		}
		nc, err := nats.Connect(cr.URL, opt, nats.NoReconnect())
		if err != nil {
			b.Fatalf("%s connects: %v", cr.Provider, err)
		}
		nc.Close()
	}
	heapLoaded := heapInUse()
	perAccount := float64(int64(heapLoaded)-int64(heapBefore)) / float64(n)

	first, last := took[:min(100, n)], took[max(0, n-100):]
	b.Logf("registered %d providers in %v", n, total.Round(time.Millisecond))
	b.Logf("each: p50 %v, p99 %v, max %v", pct(took, 50), pct(took, 99), slices.Max(took))
	b.Logf("first %d: p50 %v, p99 %v; last %d: p50 %v, p99 %v", len(first), pct(first, 50), pct(first, 99), len(last), pct(last, 50), pct(last, 99))
	b.Logf("heap in use (server, store and coordinator in one process): %.1f MB before, %.1f MB after registering, %.1f MB with every account loaded by the server: %.1f KB per provider account",
		float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20), float64(heapLoaded)/(1<<20), perAccount/1024)
	b.ReportMetric(float64(pct(took, 99).Microseconds())/1000, "p99-ms/registration")
	b.ReportMetric(total.Seconds(), "s/all-registrations")
	b.ReportMetric(perAccount/1024, "KB-heap/account")

	// One emergency to every provider.
	d := natsbus.NewDispatcher(k.Bus, k.Service, log)
	k.Service.Published = d.Kick
	dctx, stop := context.WithCancel(ctx)
	dispatching := make(chan error, 1)
	go func() { dispatching <- d.Run(dctx) }()
	defer func() { stop(); <-dispatching }()
	startClients := time.Now()
	for _, cr := range creds {
		client, err := provider.Connect(dctx, provider.Config{URL: cr.URL, ID: cr.Provider, Creds: cr.Creds, Log: log})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- client.Run(dctx, func(ctx context.Context, _ provider.Dispatch, r *provider.Reporter) error {
				return r.Done(ctx, 1, 1, 1, 0, "")
			})
		}()
		b.Cleanup(func() {
			stop()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				b.Errorf("provider %s: %v", cr.Provider, err)
			}
			client.Close()
		})
	}
	b.Logf("%d provider clients connecting (%v)", n, time.Since(startClients).Round(time.Millisecond))
	// Every provider pulling before the filing: the figure is the
	// dispatch path's, not the clients' start.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		waiting := 0
		activity, _ := k.Bus.ConsumersActivity(ctx)
		for _, cr := range creds {
			if activity[cr.Provider].Pulling {
				waiting++
			}
		}
		if waiting == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d providers pulling after 2 minutes", waiting, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Logf("all %d providers pulling after %v", n, time.Since(startClients).Round(time.Millisecond))

	mem := tocsin.Actor{Subject: "duty", Role: tocsin.RoleDepartment, Org: "gd-met", Level: tocsin.LevelProvincial, Jurisdiction: "440000"}
	filed := time.Now()
	bc, _, err := k.Service.File(ctx, mem, tocsin.Filing{
		Title: "Typhoon red warning", Content: "【广东省气象局】台风红色预警：请立即停止户外活动，留在安全场所。",
		Scope:     []string{"440100"},
		Emergency: &tocsin.Emergency{Type: tocsin.NaturalDisaster, Event: "typhoon", Level: tocsin.Red},
	}, "")
	if err != nil {
		b.Fatal(err)
	}
	admin := tocsin.Actor{Subject: "admin", Role: tocsin.RoleAdmin, Org: "admin", Level: tocsin.LevelNational, Jurisdiction: tocsin.National}
	deadline = time.Now().Add(2 * time.Minute)
	var firstAll, half time.Duration
	for {
		got, err := k.Service.Get(ctx, admin, bc.ID)
		if err != nil {
			b.Fatal(err)
		}
		heard := 0
		for _, p := range got.Providers {
			if p.Status != tocsin.DeliveryQueued {
				heard++
			}
		}
		if half == 0 && heard >= len(got.Providers)/2 {
			half = time.Since(filed)
		}
		if len(got.Providers) == n && heard == n {
			firstAll = time.Since(filed)
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after 2 minutes %d of %d providers had sent a receipt", heard, len(got.Providers))
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Logf("one emergency to %d providers: half had sent a receipt %v after the filing, the last %v after it",
		n, half.Round(time.Millisecond), firstAll.Round(time.Millisecond))
	b.ReportMetric(firstAll.Seconds(), "s/emergency-to-last-receipt")
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(10 * time.Microsecond)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
