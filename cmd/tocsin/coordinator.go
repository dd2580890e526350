package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tocsin-dev/tocsin/internal/atomicfile"
	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/gcpace"
	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/metrics"
	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/schedule"
	"github.com/tocsin-dev/tocsin/internal/supervise"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/internal/webui"
)

// coordinator is one running Tocsin: the pieces serve wires together, and
// the goroutines it runs.
type coordinator struct {
	unpace     func() // restores the collector's pace (gcpace.Floor)
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
	scheduler  *schedule.Scheduler
	registry   *natsbus.Registry
	resolver   *natsbus.Resolver
	calendars  *calendar.Book
	metrics    *metrics.Metrics
	api        *httpapi.Server
	web        *webui.Server
	listener   net.Listener
	httpAddr   string
	natsURL    string

	loopCtx        context.Context // the background loops' context, ended by close
	stopLoops      context.CancelFunc
	loops          *supervise.Supervisor // every background loop
	lateDispatches atomic.Int64          // emergency dispatches not received in time, as last counted
}

// startCoordinator starts everything serve runs, its background loops
// under one supervisor that lives until close. On failure it returns the
// real error, having stopped whatever it had started.
func startCoordinator(ctx context.Context, cfg serveConfig, log *slog.Logger) (*coordinator, error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	if cfg.GCPercent > 0 {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	c := &coordinator{cfg: cfg, log: log, clock: tocsin.SystemClock{}, regions: region.Default(), metrics: metrics.New()}
	c.unpace = gcpace.Floor(uint64(cfg.HeapFloor))
	c.loopCtx, c.stopLoops = context.WithCancel(context.WithoutCancel(ctx))
	c.loops = &supervise.Supervisor{Log: log, OnUp: c.metrics.LoopUp, OnRestart: c.metrics.LoopRestarted}
	if err := c.start(ctx); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *coordinator) start(ctx context.Context) error {
	cfg, log := c.cfg, c.log
	var err error
	if c.keys, err = loadKeys(cfg.Data, cfg.JWTKey); err != nil {
		return err
	}
	cal, err := calendar.Load(cfg.Calendars)
	if err != nil {
		return fmt.Errorf("calendars: %w", err)
	}
	c.calendars = &calendar.Book{Calendar: cal, Dir: filepath.Join(cfg.Data, "calendars")}
	if err := c.calendars.Open(); err != nil {
		return fmt.Errorf("calendars: %w", err)
	}
	log.Info("calendars loaded", slog.Any("years", cal.Years()))
	if !cfg.Now.IsZero() {
		c.clock = tocsin.StartingAt(cfg.Now)
		log.Info("demo clock set", slog.Time("now", cfg.Now))
	}
	if c.store, err = boltstore.Open(filepath.Join(cfg.Data, "tocsin.db"), c.regions, log); err != nil {
		return err
	}
	c.service = &tocsin.Service{
		Store: c.store, Calendar: cal, Regions: c.regions, Clock: c.clock,
		PostHocWorkingDays: cfg.PostHocDays,
	}
	c.calendars.Service = c.service
	// The command line's tokens act for the operator's organisation; a
	// fresh data folder gets one.
	if created, err := c.service.EnsureOperator(ctx); err != nil {
		return fmt.Errorf("operator organisation: %w", err)
	} else if created {
		log.Info("created the operator's organisation", slog.String("org", tocsin.OperatorOrg))
	}
	// A year loaded while this folder's server was stopped fills in the
	// post-hoc due dates that waited for it.
	if n, err := c.service.FillPendingDueDates(ctx); err != nil {
		return fmt.Errorf("post-hoc due dates: %w", err)
	} else if n > 0 {
		log.Info("post-hoc due dates filled in from the loaded calendars", slog.Int("count", n))
	}
	if err := c.startNATS(ctx); err != nil {
		return err
	}
	c.api = &httpapi.Server{
		Service:   c.service,
		Verifier:  c.keys.Verifier(time.Now), // tokens expire in real time, whatever the demo clock says
		Regions:   c.regions,
		Days:      cal,
		Providers: registryAPI{c.registry, c.dispatcher},
		Log:       log,
		Metrics:   c.metrics,
		Ready:     c.ready,
		Purger:    c,
		Calendars: httpapi.BookCalendars{Book: c.calendars},
		Passwords: auth.HashPassword,
		PublicURL: cfg.PublicURL,
		Tokens:    c.keys,
	}
	c.web, err = webui.New(webui.Config{
		Service: c.service, Regions: c.regions, Keys: c.keys, Verifier: c.keys.WebVerifier(time.Now),
		LastSeen: c.dispatcher.LastSeen, Log: log, Demo: cfg.Demo, Calendars: c.calendars,
		PublicURL:      cfg.PublicURL,
		TrustedProxies: cfg.TrustedProxies,
	})
	if err != nil {
		return err
	}
	c.api.Localize = c.web.ErrorText().Message // the API's messages in the caller's language
	c.registerGauges()
	if c.listener, err = net.Listen("tcp", cfg.HTTP); err != nil {
		return fmt.Errorf("HTTP address %s: %w (is another tocsin or server using it?)", cfg.HTTP, err)
	}
	c.httpAddr = c.listener.Addr().String()

	c.dispatcher.Start(c.loopCtx, c.loops)
	c.scheduler = &schedule.Scheduler{
		Service: c.service, Log: log, LateAfter: cfg.LateAfter,
		OnRelease: c.metrics.Released,
		OnLate:    func(n int) { c.lateDispatches.Store(int64(n)) },
	}
	c.loops.Go(c.loopCtx, "scheduler", func(ctx context.Context) error { c.scheduler.Run(ctx); return nil })
	c.loops.Go(c.loopCtx, "retention-purge", c.purgeDaily)
	c.startNotifications()
	if c.embedded != nil {
		c.embedded.AfterRestart = c.dispatcher.Republish
		c.loops.Go(c.loopCtx, "nats-jetstream", c.embedded.KeepJetStream)
	}
	return nil
}

// Purge applies the retention policy now.
func (c *coordinator) Purge(ctx context.Context, dryRun bool) (string, []tocsin.Purged, error) {
	purged, err := c.service.Purge(ctx, c.cfg.Retention, dryRun)
	return c.cfg.Retention.String(), purged, err
}

// purgeDaily purges at start and then once a day.
func (c *coordinator) purgeDaily(ctx context.Context) error {
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
			return nil
		case <-time.After(24 * time.Hour):
		}
	}
}

// natsKeysDir is where the data folder keeps the NATS operator's and
// accounts' keys.
func natsKeysDir(data string) string { return filepath.Join(data, "nats", "keys") }

// startNATS starts the embedded server (or connects to the external one)
// and the dispatcher; the dispatcher's loops start with the coordinator.
// The coordinator holds the NATS operator's and accounts' keys (created on
// first start in DATA/nats/keys) and issues its own users from them.
func (c *coordinator) startNATS(ctx context.Context) error {
	keys, err := natsbus.LoadKeys(natsKeysDir(c.cfg.Data))
	if err != nil {
		return err
	}
	var auth nats.Option
	c.natsURL = c.cfg.NATSURL
	if c.natsURL == "" {
		c.embedded, err = natsbus.StartEmbedded(filepath.Join(c.cfg.Data, "nats"), c.cfg.NATSListen, keys, natsLogger(c.log, c.cfg.NATSDebug))
		if err != nil {
			return err
		}
		c.natsURL = c.embedded.ClientURL()
		auth = c.embedded.CoordinatorOption()
	} else {
		if c.cfg.NATSAccounts != "" {
			// The cluster's nodes include this file: the operator they
			// trust and the accounts they start with.
			if err := writeTrust(keys, c.cfg.NATSAccounts); err != nil {
				return err
			}
		}
		user, err := keys.CoordinatorUser()
		if err != nil {
			return err
		}
		if auth, err = natsbus.CredsOption(user.Text); err != nil {
			return err
		}
	}
	bus, err := natsbus.Connect(c.natsURL, c.log, c.cfg.NATSReplicas, auth)
	if err != nil {
		return err
	}
	c.bus = bus
	c.resolver, err = natsbus.ConnectResolver(ctx, c.natsURL, keys, c.log)
	if err != nil {
		return err
	}
	c.dispatcher = natsbus.NewDispatcher(bus, c.service, c.log)
	c.dispatcher.Hooks = natsbus.Hooks{
		Published: func(provider string, sinceDurable time.Duration) {
			c.metrics.Published(1)
			if sinceDurable > 0 {
				c.metrics.ObservePublished(provider, sinceDurable)
			}
		},
		Receipt:      c.metrics.Receipt,
		Received:     c.metrics.ObserveReceived,
		DuplicateAck: c.metrics.DuplicateAck,
		DeadLetter:   c.metrics.DeadLetter,
	}
	c.service.Published = c.dispatcher.Kick
	c.registry = &natsbus.Registry{Service: c.service, Bus: bus, Keys: keys, Resolver: c.resolver, URL: c.natsURL, Log: c.log}
	converted, err := c.registry.Sync(ctx)
	if err != nil {
		return err
	}
	return c.handOver(converted)
}

// handOver prints the credentials of providers converted from NATS
// passwords, once, and writes each to DATA/nats/creds/ID.creds (0600).
func (c *coordinator) handOver(converted map[string]natsbus.Credentials) error {
	if len(converted) == 0 {
		return nil
	}
	dir := filepath.Join(c.cfg.Data, "nats", "creds")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("provider credentials: %w", err)
	}
	ids := make([]string, 0, len(converted))
	for id := range converted {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		path := filepath.Join(dir, id+".creds")
		if err := atomicfile.Write(path, []byte(converted[id].Creds), 0o600); err != nil {
			return fmt.Errorf("provider credentials: %w", err)
		}
		c.log.Warn("provider converted from a NATS password to a NATS account: its password no longer works; hand it these credentials (shown once)",
			slog.String("provider", id), slog.String("creds_file", path), slog.String("creds", converted[id].Creds))
	}
	return nil
}

// writeTrust writes the trust a cluster node includes: the operator, the
// system account and the preloaded accounts. It holds no secret; 0644 so
// that nodes running as another user can read it.
func writeTrust(keys *natsbus.Keys, path string) error {
	trust, err := keys.NewTrust()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("nats trust file: %w", err)
	}
	if err := atomicfile.Write(path, []byte(trust.Render()), 0o644); err != nil {
		return fmt.Errorf("nats trust file: %w", err)
	}
	return nil
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
	c.metrics.SetOutboxOldestAge(func() float64 {
		age, _, _ := c.dispatcher.OldestOutbox(context.Background())
		return age.Seconds()
	})
	c.metrics.SetRelayLastProgress(func() float64 { return time.Since(c.dispatcher.RelayLastProgress()).Seconds() })
	c.metrics.SetReceiptLag(func() float64 { return c.dispatcher.ReceiptLag().Seconds() })
	c.metrics.SetStoreWritable(func() float64 {
		if c.store.Writable() != nil {
			return 0
		}
		return 1
	})
	c.metrics.SetCalendarDaysUntilRefusal(func() float64 {
		gap, ok := c.service.CalendarGap()
		if !ok {
			return math.Inf(1) // no refusal ahead
		}
		return float64(gap.DaysLeft(c.clock.Now()))
	})
	c.metrics.SetReady(func() float64 {
		if len(c.ready(context.Background()).Reasons) > 0 {
			return 0
		}
		return 1
	})
}

// ready tells /readyz the truth: any supervised loop down, NATS away,
// the outbox not moving, receipts lagging or the store unwritable makes
// Tocsin unready, with the reasons.
func (c *coordinator) ready(ctx context.Context) httpapi.Readiness {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	r := httpapi.Readiness{Details: map[string]any{"nats_url": c.natsURL}}
	r.Reasons = append(r.Reasons, c.loops.Down()...)
	r.Reasons = append(r.Reasons, c.dispatcher.Problems(ctx)...)
	if c.embedded != nil {
		if err := c.embedded.JetStreamOn(); err != nil {
			r.Reasons = append(r.Reasons, err.Error())
		}
	}
	if err := c.store.Writable(); err != nil {
		r.Reasons = append(r.Reasons, tocsin.ErrorMessage(err))
	}
	if age, n, err := c.dispatcher.OldestOutbox(ctx); err == nil {
		r.Details["outbox_backlog"] = n
		r.Details["outbox_oldest_seconds"] = age.Seconds()
	}
	r.Details["nats_connected"] = c.bus.Connected()
	r.Details["dispatch_ready"] = c.dispatcher.Ready()
	r.Details["receipt_lag_seconds"] = c.dispatcher.ReceiptLag().Seconds()
	if c.scheduler != nil {
		// A warning, not a reason: what fails is one broadcast's record
		// (a store that cannot write is a reason of its own, above), and
		// an instance taken out of rotation for it would file no
		// emergency either.
		for _, p := range c.scheduler.Problems() {
			r.Warnings = append(r.Warnings, httpapi.Warning{Code: "scheduled_failing", Message: p})
		}
	}
	if gap, ok := c.service.CalendarGap(); ok {
		r.Warnings = append(r.Warnings, httpapi.Warning{Code: string(tocsin.CodeCalendarMissing), Message: gap.Message(),
			Year: gap.Year, FirstRefused: gap.FirstRefused.Format(tocsin.DateLayout)})
	}
	return r
}

// serve answers HTTP until ctx ends, then drains in-flight requests:
// those still running after the drain's 3 s have their contexts ended
// and are waited for (1 s more at most), so that none outlives the store
// and the bus they use, and a stop stays within its 5 s.
func (c *coordinator) serve(ctx context.Context) error {
	requests, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	var (
		mu       sync.Mutex // guards stopping and running's additions
		stopping bool
		running  sync.WaitGroup
	)
	handler := c.handler()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if stopping {
				mu.Unlock()
				http.Error(w, "Tocsin is stopping", http.StatusServiceUnavailable)
				return
			}
			running.Add(1)
			mu.Unlock()
			defer running.Done()
			handler.ServeHTTP(w, r)
		}),
		BaseContext:       func(net.Listener) context.Context { return requests },
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(c.web.CloseStreams)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(c.listener) }()
	c.log.Info("serving", slog.String("http", c.httpAddr), slog.String("public_url", c.publicURL()),
		slog.String("nats", c.natsURL), slog.String("data", c.cfg.Data))
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	c.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err != nil {
		c.log.Warn("requests still running after the drain; ending them")
		endRequests()
		_ = srv.Close()
	}
	mu.Lock()
	stopping = true // no Add may race the Wait below
	mu.Unlock()
	ended := make(chan struct{})
	go func() { running.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(time.Second):
		c.log.Error("requests still running after they were ended; stopping without them")
	}
	return nil
}

// publicURL is the base of the links Tocsin writes, as configured, or else
// what it falls back to: the address each connection is accepted on.
func (c *coordinator) publicURL() string {
	if c.cfg.PublicURL != "" {
		return c.cfg.PublicURL
	}
	return "(not set: the address each connection arrives on; set --public-url)"
}

// handler is the API with the web UI mounted at the root.
func (c *coordinator) handler() http.Handler {
	h := c.api.Handler()
	h.Mount("/", c.web.Routes())
	return h
}

// close stops everything in reverse order of start, whatever of it was
// started, and returns once every background loop has ended.
func (c *coordinator) close() {
	defer c.unpace()
	c.stopLoops()
	c.loops.Wait()
	if c.resolver != nil {
		c.resolver.Close()
	}
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
	return r.registry.Registration(ctx, p)
}

func (r registryAPI) Rotate(ctx context.Context, id string) (any, error) {
	return r.registry.Rotate(ctx, id)
}

func (r registryAPI) Revoke(ctx context.Context, id string) error { return r.registry.Revoke(ctx, id) }

func (r registryAPI) SetDisabled(ctx context.Context, id string, disabled bool) error {
	if err := r.registry.SetDisabled(ctx, id, disabled); err != nil {
		return err
	}
	r.dispatcher.Hold(id, disabled) // an enabled provider's waiting dispatches go out now
	return nil
}

func (r registryAPI) LastSeen(provider string) (time.Time, bool) {
	return r.dispatcher.LastSeen(provider)
}
