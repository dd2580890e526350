package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// NATS is an embedded NATS server on a loopback port with the coordinator
// connected and Tocsin's streams created.
type NATS struct {
	Embedded *natsbus.Embedded
	Bus      *natsbus.Bus
	Keys     *natsbus.Keys
	// Resolver pushes account JWTs to the server, as the system user.
	Resolver *natsbus.Resolver
}

// MustNATS starts an embedded server with no providers, its data in a
// temporary folder, on 127.0.0.1 and a free port, and connects the
// coordinator to it. Both are closed when the test ends.
func MustNATS(tb testing.TB, log *slog.Logger) *NATS {
	tb.Helper()
	e, keys := MustEmbedded(tb, tb.TempDir(), log)
	bus, err := natsbus.Connect(e.ClientURL(), log, 1, e.CoordinatorOption())
	if err != nil {
		tb.Fatalf("connect to embedded NATS: %v", err)
	}
	tb.Cleanup(bus.Close)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	res, err := natsbus.ConnectResolver(ctx, e.ClientURL(), keys, log)
	if err != nil {
		tb.Fatalf("connect to embedded NATS as the system user: %v", err)
	}
	tb.Cleanup(res.Close)
	if err := bus.EnsureStreams(ctx); err != nil {
		tb.Fatalf("create streams: %v", err)
	}
	return &NATS{Embedded: e, Bus: bus, Keys: keys, Resolver: res}
}

// MustEmbedded starts an embedded server in dir on 127.0.0.1 and a free
// port, with the NATS keys in dir/keys (created if need be), until the
// test ends.
func MustEmbedded(tb testing.TB, dir string, log *slog.Logger) (*natsbus.Embedded, *natsbus.Keys) {
	tb.Helper()
	keys, err := natsbus.LoadKeys(filepath.Join(dir, "keys"))
	if err != nil {
		tb.Fatal(err)
	}
	e, err := natsbus.StartEmbedded(dir, "127.0.0.1:0", keys, log)
	if err != nil {
		tb.Fatalf("start embedded NATS: %v", err)
	}
	tb.Cleanup(e.Shutdown)
	return e, keys
}

// Coordinator is the coordinator's side as cmd/tocsin wires it: a Service
// on a bbolt store, the embedded NATS server, and a Registry through which
// providers are registered.
type Coordinator struct {
	*NATS
	Store    *boltstore.DB
	Service  *tocsin.Service
	Registry *natsbus.Registry
	// Creds are the registered providers' credentials, by provider id.
	Creds map[string]natsbus.Credentials
}

// MustCoordinator starts NATS, opens a store, builds a Service on the
// system clock with the demo organisations seeded (but not the demo
// providers), and registers providers through the Registry, each with its
// NATS login and consumer.
func MustCoordinator(tb testing.TB, log *slog.Logger, providers ...tocsin.Provider) *Coordinator {
	tb.Helper()
	n := MustNATS(tb, log)
	store := MustStore(tb, log)
	svc := MustService(tb, store, tocsin.SystemClock{})
	MustSeed(tb, svc, Organisations)
	c := &Coordinator{
		NATS: n, Store: store, Service: svc,
		Registry: &natsbus.Registry{Service: svc, Bus: n.Bus, Keys: n.Keys, Resolver: n.Resolver, URL: n.Embedded.ClientURL(), Log: log},
		Creds:    map[string]natsbus.Credentials{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	for _, p := range providers {
		p.Regions = slices.Clone(p.Regions) // Register normalises in place
		cr, err := c.Registry.Register(ctx, p)
		if err != nil {
			tb.Fatalf("register %s: %v", p.ID, err)
		}
		c.Creds[p.ID] = cr
	}
	return c
}

// MustNATSCluster starts a three-node JetStream cluster in this process,
// on loopback ports from the OS and with no accounts, until the test ends,
// and returns each node's client URL once every node's JetStream reports
// healthy. A cluster that healthy may still lose a request's answer now
// and then while it settles, as a production one just started does.
// It is for what only a cluster does (replicated streams, the meta
// leader's answers); the coordinator's accounts are MustNATS's.
func MustNATSCluster(tb testing.TB) []string {
	tb.Helper()
	routePorts := make([]int, 3)
	var routes []string
	for i := range routePorts {
		routePorts[i] = FreePort(tb)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
	}
	var urls []string
	var nodes []*server.Server
	for i := range routePorts {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "testkit", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			tb.Fatalf("NATS cluster node %d: %v", i+1, err)
		}
		s.Start() // returns once listening; the cluster forms behind it
		tb.Cleanup(s.Shutdown)
		nodes = append(nodes, s)
	}
	deadline := time.Now().Add(setupTimeout)
	for _, s := range nodes {
		if !s.ReadyForConnections(time.Until(deadline)) {
			tb.Fatalf("NATS cluster node %s not ready within %s", s.Name(), setupTimeout)
		}
		urls = append(urls, s.ClientURL())
	}
	for _, s := range nodes {
		for {
			status := s.Healthz(nil)
			if status.Error == "" {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("NATS cluster node %s: JetStream not healthy within %s: %s", s.Name(), setupTimeout, status.Error)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return urls
}
