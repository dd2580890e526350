// Command tocsin-provider is Tocsin's reference SMS provider: it connects to
// NATS with a provider's credentials, receives its dispatches, simulates
// sending and reports receipts.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tocsin-dev/tocsin/provider"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "tocsin-provider:", err)
		os.Exit(1)
	}
}

// credentials is the shape POST /api/v1/providers returns and
// demo-providers.json holds per provider: creds is the .creds file's text.
type credentials struct {
	Provider string `json:"provider"`
	URL      string `json:"url"`
	Creds    string `json:"creds"`
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("tocsin-provider", flag.ContinueOnError)
	fs.SetOutput(stderr)
	credsFile := fs.String("creds", os.Getenv("TOCSIN_PROVIDER_CREDS"), "NATS credentials file (.creds) Tocsin issued the provider (tocsin provider add --creds-out)")
	credFile := fs.String("credentials", "", "JSON credentials: one provider's (from POST /api/v1/providers) or demo-providers.json with --id; instead of --creds and --url")
	id := fs.String("id", os.Getenv("TOCSIN_PROVIDER_ID"), "provider id")
	url := fs.String("url", os.Getenv("TOCSIN_NATS_URL"), "NATS URL")
	sim := provider.DefaultSimulation
	fs.IntVar(&sim.RecipientsPerRegion, "recipients", sim.RecipientsPerRegion, "simulated recipients per region")
	fs.IntVar(&sim.PerSecond, "rate", sim.PerSecond, "simulated messages sent per second")
	fs.Float64Var(&sim.FailureRatio, "failure-ratio", sim.FailureRatio, "share of simulated messages that fail (0..1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := provider.Config{ID: *id, URL: *url, CredsFile: *credsFile}
	if *credFile != "" {
		c, err := readCredentials(*credFile, *id)
		if err != nil {
			return err
		}
		cfg.ID, cfg.URL, cfg.Creds, cfg.CredsFile = c.Provider, c.URL, c.Creds, ""
	}
	if cfg.ID == "" || cfg.URL == "" || (cfg.Creds == "" && cfg.CredsFile == "") {
		return errors.New("need --id, --url and --creds FILE, or --credentials")
	}
	if sim.FailureRatio < 0 || sim.FailureRatio > 1 || sim.PerSecond < 1 || sim.RecipientsPerRegion < 0 {
		return errors.New("--failure-ratio must be within 0..1, --rate at least 1, --recipients not negative")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Log = log
	c, err := provider.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	// Connect returns before the connection is up; the client logs when
	// it is, and Run returns an error only if NATS refuses the
	// credentials for good, which main turns into a non-zero exit.
	log.Info("reference provider starting", slog.String("provider", cfg.ID), slog.String("url", cfg.URL))
	return c.Run(ctx, sim.Handle)
}

// readCredentials reads one provider's credentials, from a file holding
// them alone or from a map of them keyed by provider id.
func readCredentials(path, id string) (credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return credentials{}, err
	}
	var one credentials
	if err := json.Unmarshal(data, &one); err == nil && one.Creds != "" {
		return one, nil
	}
	var many map[string]credentials
	if err := json.Unmarshal(data, &many); err != nil {
		return credentials{}, fmt.Errorf("%s: %w", path, err)
	}
	c, ok := many[id]
	if !ok || c.Creds == "" {
		return credentials{}, fmt.Errorf("%s has no credentials for provider %q (use --id)", path, id)
	}
	return c, nil
}
