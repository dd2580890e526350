package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// serveConfig is everything serve and demo are told, with defaults in code,
// environment over defaults and flags over both.
type serveConfig struct {
	Data        string
	HTTP        string
	PublicURL   string // base of every absolute link; "" uses the listen address
	Calendars   string
	JWTKey      string
	Seed        string
	PostHocDays int
	LogLevel    slog.Level
	LogJSON     bool
	NATSDebug   bool // the embedded nats-server's notices, debug and trace lines too

	NATSListen   string
	NATSURL      string
	NATSReplicas int
	NATSAccounts string
	Retention    tocsin.Retention
	LateAfter    time.Duration
	// GCPercent is the garbage collector's target (runtime/debug
	// SetGCPercent); 0 leaves it to GOGC.
	GCPercent int
	// MemoryLimit is the runtime's soft memory limit in bytes (runtime/
	// debug SetMemoryLimit); 0 leaves it to GOMEMLIMIT.
	MemoryLimit int64
	// HeapFloor is the heap goal the collector is kept to at least
	// (gcpace.Floor); 0 for none.
	HeapFloor int64
	// TrustedProxies may name the client in X-Forwarded-For (login
	// limits).
	TrustedProxies []netip.Prefix
	// WebhookBackoff is the wait after a webhook delivery's first
	// failure, doubled after each further one up to WebhookMaxBackoff.
	WebhookBackoff    time.Duration
	WebhookMaxBackoff time.Duration

	// Demo only.
	Demo         bool
	Now          time.Time
	NoSimulators bool
}

// defaultMemoryLimit is the soft limit on the memory the Go runtime
// holds. The coordinator shares its heap with the embedded NATS server,
// and a record-heavy day doubled its live heap in garbage before each
// collection: at 100,000 finished and 100,000 pending broadcasts the peak
// RSS was 172 MB at Go's default pace. Halving the pace (GOGC 50) held it
// to 145 MB but collected twice as often all the time, some 12 % of the
// CPU a filing costs. A soft limit collects harder only when memory
// nears it: 135 MB peak at that load, and Go's pace below it
// (docs/benchmarks.md). Past the limit the runtime caps collection at
// about half the CPU rather than fail, so a heap that truly needs more
// gets it, slower.
const defaultMemoryLimit = "100MiB"

// defaultHeapFloor is the least heap the collector waits for. At Go's
// pace a coordinator with 300 providers (a 35-57 MB live heap, beside the
// bench's raw chains) collected about every second, each mark phase
// 27-36 ms long, and lone filings committing during one waited for the
// writer to be scanned and for the mark workers on both Ps, 4-12 ms to
// their 201 (internal/gcpace). With 192 MiB the p99 of 1,000 lone filings
// went from 1.93-3.23x RAW's to 1.25-2.04x (docs/benchmarks.md).
// With the soft memory limit (100 MiB by default) the limit comes first,
// so under it the collector runs when memory nears the limit, as the
// records phase already did; without one, the heap grows to this.
const defaultHeapFloor = "192MiB"

func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer, demo bool) (serveConfig, error) {
	name := "serve"
	if demo {
		name = "demo"
	}
	fs := newFlagSet(name, stderr)
	cfg := serveConfig{Demo: demo}
	fs.StringVar(&cfg.Data, "data", envOr(getenv, "TOCSIN_DATA", "./data"), "data folder: store, NATS files, keys")
	fs.StringVar(&cfg.HTTP, "http", envOr(getenv, "TOCSIN_HTTP", "127.0.0.1:8080"), "HTTP listen address")
	fs.StringVar(&cfg.PublicURL, "public-url", envOr(getenv, "TOCSIN_PUBLIC_URL", ""), "base URL the public reaches Tocsin at (https://alerts.example.gov.cn): every absolute link in CAP, Atom and the web uses it; default the listen address")
	fs.StringVar(&cfg.Calendars, "calendars", envOr(getenv, "TOCSIN_CALENDARS", ""), "directory of extra calendar files (YYYY.json)")
	fs.StringVar(&cfg.JWTKey, "jwt-key", envOr(getenv, "TOCSIN_JWT_KEY", ""), "Ed25519 signing key (PKCS#8 PEM); default DATA/keys/jwt.pem, created on first start")
	fs.StringVar(&cfg.NATSListen, "nats-listen", envOr(getenv, "TOCSIN_NATS_LISTEN", "127.0.0.1:4222"), "client address of the embedded NATS server")
	fs.StringVar(&cfg.NATSURL, "nats-url", envOr(getenv, "TOCSIN_NATS_URL", ""), "use this external NATS server or cluster instead of the embedded one")
	fs.IntVar(&cfg.NATSReplicas, "nats-replicas", 1, "JetStream replicas of the streams (3 on a three-node cluster)")
	fs.StringVar(&cfg.NATSAccounts, "nats-accounts", envOr(getenv, "TOCSIN_NATS_ACCOUNTS", ""), "with --nats-url: file to write the cluster's NATS trust into at start (operator, system account, preloaded accounts; no secret), for its nodes to include; see tocsin nats bootstrap")
	fs.DurationVar(&cfg.LateAfter, "emergency-deadline", 30*time.Second, "flag an emergency dispatch a provider has not received within this time")
	fs.DurationVar(&cfg.WebhookBackoff, "webhook-backoff", 5*time.Second, "wait after a failed webhook delivery, doubled after each further failure")
	fs.DurationVar(&cfg.WebhookMaxBackoff, "webhook-max-backoff", time.Hour, "longest wait between webhook delivery attempts")
	fs.IntVar(&cfg.PostHocDays, "post-hoc-days", tocsin.DefaultPostHocWorkingDays, "working days after release an emergency's post-hoc report is due")
	gcPercent := fs.Int("gc-percent", 100, "heap growth between garbage collections, in percent: lower holds memory down for more CPU (ignored when GOGC is set)")
	memoryLimit := fs.String("memory-limit", defaultMemoryLimit, "soft limit on the Go runtime's memory (B, KiB, MiB, GiB; off for none): collection works harder near it (ignored when GOMEMLIMIT is set)")
	heapFloor := fs.String("gc-heap-floor", defaultHeapFloor, "let the heap grow to at least this before collecting garbage (B, KiB, MiB, GiB; off for Go's pace alone): fewer collections stalling commits while the live heap is small")
	retention := fs.String("retention", envOr(getenv, "TOCSIN_RETENTION", tocsin.DefaultRetention.String()), "how long finished broadcasts are kept: days (180d) or months (6mo), at least five months")
	proxies := fs.String("trusted-proxies", envOr(getenv, "TOCSIN_TRUSTED_PROXIES", ""), "reverse proxies (CIDR,...) whose X-Forwarded-For names the client, for login limits")
	logLevel := fs.String("log-level", envOr(getenv, "TOCSIN_LOG_LEVEL", "info"), "debug, info, warn or error")
	fs.BoolVar(&cfg.LogJSON, "log-json", getenv("TOCSIN_LOG_JSON") != "", "log as JSON lines")
	fs.BoolVar(&cfg.NATSDebug, "nats-debug", false, "log the embedded NATS server's notices, debug and trace lines (by default only its warnings and errors)")
	var now string
	if demo {
		fs.StringVar(&now, "now", "", "start the demo clock at this RFC 3339 time")
		fs.BoolVar(&cfg.NoSimulators, "no-simulators", false, "run without the in-process provider simulators")
	} else {
		fs.StringVar(&cfg.Seed, "seed", envOr(getenv, "TOCSIN_SEED", ""), "JSON file of organisations and providers to create or update at start")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return cfg, err
	}
	if len(pos) > 0 {
		return cfg, usageError("%s takes no arguments, got %q", name, pos)
	}
	if *gcPercent <= 0 {
		return cfg, usageError("--gc-percent must be a positive percentage, got %d", *gcPercent)
	}
	if getenv("GOGC") == "" {
		cfg.GCPercent = *gcPercent
	}
	limit, err := parseByteSize(*memoryLimit)
	if err != nil {
		return cfg, usageError("--memory-limit: %v", err)
	}
	if getenv("GOMEMLIMIT") == "" {
		cfg.MemoryLimit = limit
	}
	if cfg.HeapFloor, err = parseByteSize(*heapFloor); err != nil {
		return cfg, usageError("--gc-heap-floor: %v", err)
	}
	if cfg.Retention, err = tocsin.ParseRetention(*retention); err != nil {
		return cfg, usageError("--retention: %v", err)
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, usageError("--log-level: %v", err)
	}
	if now != "" {
		if cfg.Now, err = time.Parse(time.RFC3339, now); err != nil {
			return cfg, usageError("--now must be an RFC 3339 time such as 2026-12-01T09:00:00+08:00: %v", err)
		}
	}
	if cfg.PublicURL != "" {
		if cfg.PublicURL, err = checkPublicURL(cfg.PublicURL); err != nil {
			return cfg, usageError("--public-url: %v", err)
		}
	}
	for _, p := range splitList(*proxies) {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return cfg, usageError("--trusted-proxies: %q is not a CIDR prefix or an address", p)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, prefix.Masked())
	}
	if cfg.WebhookBackoff <= 0 || cfg.WebhookMaxBackoff < cfg.WebhookBackoff {
		return cfg, usageError("--webhook-backoff must be positive and at most --webhook-max-backoff")
	}
	if cfg.PostHocDays < 1 {
		return cfg, usageError("--post-hoc-days must be at least 1")
	}
	return cfg, nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, demo bool) error {
	cfg, err := parseServeConfig(args, getenv, stderr, demo)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogJSON)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := startCoordinator(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		cancel() // ends the background loops close waits for
		c.close()
	}()
	if demo {
		if err := c.seedDemo(ctx, stdout); err != nil {
			return err
		}
	} else if cfg.Seed != "" {
		if err := c.seedFile(ctx, cfg.Seed); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "tocsin: listening on http://%s\n", c.httpAddr)
	return c.serve(ctx)
}

// checkPublicURL accepts an absolute http or https URL with a host and
// nothing after its path, and returns it without a trailing slash.
func checkPublicURL(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", err
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q must start with https:// (or http://)", s)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q names no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("%q may hold a scheme, host, port and path only", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseByteSize reads a size as GOMEMLIMIT writes one: a whole number of
// bytes with an optional B, KiB, MiB or GiB, or "off" (0, no limit).
func parseByteSize(s string) (int64, error) {
	if s == "off" {
		return 0, nil
	}
	digits := strings.TrimRight(s, "BKMGib")
	unit := s[len(digits):]
	shift, ok := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30}[unit]
	n, err := strconv.ParseInt(digits, 10, 64)
	if !ok || err != nil || n <= 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is not a size such as 100MiB, 2GiB or off", s)
	}
	return n << shift, nil
}
