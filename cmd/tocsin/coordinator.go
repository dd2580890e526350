package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/metrics"
	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/schedule"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/internal/webui"
)

// coordinator is one running Tocsin: the pieces serve wires together, and
// the goroutines it runs.
type coordinator struct {
	cfg        serveConfig
	log        *slog.Logger
	clock      tocsin.Clock
	keys       *auth.Keys
	regions    *region.Divisions
	store      *boltstore.DB
	service    *tocsin.Service
	embedded   *natsbus.Embedded // nil with an external NATS
	bus        *natsbus.Bus
	dispatcher *natsbus.Dispatcher
	registry   *natsbus.Registry
	metrics    *metrics.Metrics
	api        *httpapi.Server
	web        *webui.Server
	listener   net.Listener
	httpAddr   string
	natsURL    string

	workers        sync.WaitGroup // background loops, ended by the start context
	lateDispatches atomic.Int64   // emergency dispatches not received in time, as last counted
}

func startCoordinator(ctx context.Context, cfg serveConfig, log *slog.Logger) (c *coordinator, err error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	c = &coordinator{cfg: cfg, log: log, clock: tocsin.SystemClock{}, regions: region.Default(), metrics: metrics.New()}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if c.keys, err = loadKeys(cfg.Data, cfg.JWTKey); err != nil {
		return nil, err
	}
	cal, err := calendar.Load(cfg.Calendars)
	if err != nil {
		return nil, fmt.Errorf("calendars: %w", err)
	}
	log.Info("calendars loaded", slog.Any("years", cal.Years()))
	if !cfg.Now.IsZero() {
		c.clock = tocsin.StartingAt(cfg.Now)
		log.Info("demo clock set", slog.Time("now", cfg.Now))
	}
	if c.store, err = boltstore.Open(filepath.Join(cfg.Data, "tocsin.db"), c.regions, log); err != nil {
		return nil, err
	}
	c.service = &tocsin.Service{
		Store: c.store, Calendar: cal, Regions: c.regions, Clock: c.clock,
		PostHocWorkingDays: cfg.PostHocDays,
	}
	if err := c.startNATS(ctx); err != nil {
		return nil, err
	}
	c.api = &httpapi.Server{
		Service:   c.service,
		Verifier:  c.keys.Verifier(time.Now), // tokens expire in real time, whatever the demo clock says
		Regions:   c.regions,
		Days:      calendarDays{cal},
		Providers: registryAPI{c.registry, c.dispatcher},
		Log:       log,
		Metrics:   c.metrics,
		Ready:     c.ready,
		Purger:    c,
		Passwords: auth.HashPassword,
	}
	c.web, err = webui.New(webui.Config{
		Service: c.service, Regions: c.regions, Keys: c.keys, Verifier: c.api.Verifier,
		LastSeen: c.dispatcher.LastSeen, Log: log, Demo: cfg.Demo,
	})
	if err != nil {
		return nil, err
	}
	c.registerGauges()
	if c.listener, err = net.Listen("tcp", cfg.HTTP); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
	}
	c.httpAddr = c.listener.Addr().String()

	c.goWork(func() {
		if err := c.dispatcher.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("dispatcher stopped", slog.Any("error", err))
		}
	})
	sched := &schedule.Scheduler{
		Service: c.service, Log: log, LateAfter: cfg.LateAfter,
		OnRelease: c.metrics.Released,
		OnLate:    func(n int) { c.lateDispatches.Store(int64(n)) },
	}
	c.goWork(func() { sched.Run(ctx) })
	c.goWork(func() { c.purgeDaily(ctx) })
	return c, nil
}

// Purge applies the retention policy now.
func (c *coordinator) Purge(ctx context.Context, dryRun bool) (string, []tocsin.Purged, error) {
	purged, err := c.service.Purge(ctx, c.cfg.Retention, dryRun)
	return c.cfg.Retention.String(), purged, err
}

// purgeDaily purges at start and then once a day.
func (c *coordinator) purgeDaily(ctx context.Context) {
	for {
		purged, err := c.service.Purge(ctx, c.cfg.Retention, false)
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Error("purge failed", slog.Any("error", err))
		case len(purged) > 0:
			c.log.Info("purged finished broadcasts past retention", slog.Int("count", len(purged)), slog.String("retention", c.cfg.Retention.String()))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(24 * time.Hour):
		}
	}
}

// startNATS starts the embedded server (or connects to the external one)
// and the dispatcher; the dispatcher's loops start with the coordinator.
func (c *coordinator) startNATS(ctx context.Context) error {
	var opts []nats.Option
	c.natsURL = c.cfg.NATSURL
	if c.natsURL == "" {
		users, err := natsbus.ProviderUsers(ctx, c.store)
		if err != nil {
			return err
		}
		c.embedded, err = natsbus.StartEmbedded(filepath.Join(c.cfg.Data, "nats"), c.cfg.NATSListen, users, natsLogger(c.log, c.cfg.NATSDebug))
		if err != nil {
			return err
		}
		c.natsURL = c.embedded.ClientURL()
		opts = append(opts, nats.UserInfo(natsbus.CoordinatorUser, c.embedded.CoordinatorPassword))
	} else if c.cfg.NATSPassword != "" {
		opts = append(opts, nats.UserInfo(c.cfg.NATSUser, c.cfg.NATSPassword))
	}
	bus, err := natsbus.Connect(c.natsURL, c.log, c.cfg.NATSReplicas, opts...)
	if err != nil {
		return err
	}
	c.bus = bus
	c.dispatcher = natsbus.NewDispatcher(bus, c.service, c.log)
	c.dispatcher.OnPublished = c.metrics.Published
	c.dispatcher.OnReceipt = c.metrics.Receipt
	c.service.Published = c.dispatcher.Kick
	c.registry = &natsbus.Registry{Service: c.service, Bus: bus, Embedded: c.embedded, URL: c.natsURL}
	if c.embedded == nil && c.cfg.NATSAccounts != "" {
		// An external cluster learns provider logins from a file its
		// nodes include and reload (docker-compose.yml shows how).
		hash, err := natsbus.HashPassword(c.cfg.NATSPassword, bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(c.cfg.NATSAccounts), 0o755); err != nil {
			return fmt.Errorf("nats accounts file: %w", err)
		}
		c.registry.AccountsFile, c.registry.CoordinatorPasswordHash = c.cfg.NATSAccounts, hash
		if err := c.registry.SyncUsers(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (c *coordinator) goWork(fn func()) {
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		fn()
	}()
}

func (c *coordinator) registerGauges() {
	c.metrics.SetOutboxBacklog(func() float64 {
		n := 0
		_ = c.store.View(context.Background(), func(tx tocsin.ReadTx) error {
			var err error
			n, err = tx.OutboxLen()
			return err
		})
		return float64(n)
	})
	c.metrics.SetEmergencyLate(func() float64 { return float64(c.lateDispatches.Load()) })
	c.metrics.SetNATSConnected(func() float64 {
		if c.bus.Connected() {
			return 1
		}
		return 0
	})
	c.metrics.SetProviderLastSeen(func() map[string]float64 {
		out := map[string]float64{}
		var providers []*tocsin.Provider
		_ = c.store.View(context.Background(), func(tx tocsin.ReadTx) error {
			var err error
			providers, err = tx.Providers()
			return err
		})
		for _, p := range providers {
			if t, ok := c.dispatcher.LastSeen(p.ID); ok {
				out[p.ID] = time.Since(t).Seconds()
			}
		}
		return out
	})
}

func (c *coordinator) ready(ctx context.Context) (map[string]any, error) {
	details := map[string]any{"nats_url": c.natsURL}
	err := c.store.View(ctx, func(tx tocsin.ReadTx) error {
		n, err := tx.OutboxLen()
		details["outbox_backlog"] = n
		return err
	})
	if err != nil {
		return details, err
	}
	details["nats_connected"] = c.bus.Connected()
	details["dispatch_ready"] = c.dispatcher.Ready()
	// Filing goes on while NATS is away (the outbox holds dispatches), so
	// NATS state is reported but does not make us unready.
	return details, nil
}

// serve answers HTTP until ctx ends, then drains in-flight requests.
func (c *coordinator) serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           c.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(c.listener) }()
	c.log.Info("serving", slog.String("http", c.httpAddr), slog.String("nats", c.natsURL), slog.String("data", c.cfg.Data))
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	c.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// handler is the API with the web UI mounted at the root.
func (c *coordinator) handler() http.Handler {
	h := c.api.Handler()
	h.Mount("/", c.web.Routes())
	return h
}

// close stops everything in reverse order of start. The start context
// must already be cancelled, so the background loops are ending.
func (c *coordinator) close() {
	c.workers.Wait()
	if c.bus != nil {
		c.bus.Close()
	}
	if c.embedded != nil {
		c.embedded.Shutdown()
	}
	if c.store != nil {
		if err := c.store.Close(); err != nil {
			c.log.Error("closing store", slog.Any("error", err))
		}
	}
}

// registryAPI adapts the NATS registry to the API's provider registry.
type registryAPI struct {
	registry   *natsbus.Registry
	dispatcher *natsbus.Dispatcher
}

func (r registryAPI) Register(ctx context.Context, p tocsin.Provider) (any, error) {
	creds, err := r.registry.Register(ctx, p)
	if err != nil {
		return nil, err
	}
	return struct {
		natsbus.Credentials
		Name    string   `json:"name"`
		Regions []string `json:"regions"`
	}{creds, p.Name, p.Regions}, nil
}

func (r registryAPI) LastSeen(provider string) (time.Time, bool) {
	return r.dispatcher.LastSeen(provider)
}
