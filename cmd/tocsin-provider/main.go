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
// demo-providers.json holds per provider.
type credentials struct {
	Provider string `json:"provider"`
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("tocsin-provider", flag.ContinueOnError)
	fs.SetOutput(stderr)
	credFile := fs.String("credentials", "", "JSON credentials file: one provider's (from POST /api/v1/providers) or demo-providers.json with --id")
	id := fs.String("id", os.Getenv("TOCSIN_PROVIDER_ID"), "provider id")
	url := fs.String("url", os.Getenv("TOCSIN_NATS_URL"), "NATS URL")
	user := fs.String("user", "", "NATS user (default: the provider id)")
	password := fs.String("password", os.Getenv("TOCSIN_PROVIDER_PASSWORD"), "NATS password")
	sim := provider.DefaultSimulation
	fs.IntVar(&sim.RecipientsPerRegion, "recipients", sim.RecipientsPerRegion, "simulated recipients per region")
	fs.IntVar(&sim.PerSecond, "rate", sim.PerSecond, "simulated messages sent per second")
	fs.Float64Var(&sim.FailureRatio, "failure-ratio", sim.FailureRatio, "share of simulated messages that fail (0..1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *credFile != "" {
		c, err := readCredentials(*credFile, *id)
		if err != nil {
			return err
		}
		*id, *url, *user, *password = c.Provider, c.URL, c.User, c.Password
	}
	if *id == "" || *url == "" || *password == "" {
		return errors.New("need --credentials, or --id, --url and --password")
	}
	if sim.FailureRatio < 0 || sim.FailureRatio > 1 || sim.PerSecond < 1 || sim.RecipientsPerRegion < 0 {
		return errors.New("--failure-ratio must be within 0..1, --rate at least 1, --recipients not negative")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	c, err := provider.Connect(ctx, provider.Config{URL: *url, ID: *id, User: *user, Password: *password, Log: log})
	if err != nil {
		return err
	}
	defer c.Close()
	// Connect returns before the connection is up; the client logs when
	// it is, and Run returns an error only if NATS refuses the
	// credentials for good, which main turns into a non-zero exit.
	log.Info("reference provider starting", slog.String("provider", *id), slog.String("url", *url))
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
	if err := json.Unmarshal(data, &one); err == nil && one.Password != "" {
		return one, nil
	}
	var many map[string]credentials
	if err := json.Unmarshal(data, &many); err != nil {
		return credentials{}, fmt.Errorf("%s: %w", path, err)
	}
	c, ok := many[id]
	if !ok {
		return credentials{}, fmt.Errorf("%s has no credentials for provider %q (use --id)", path, id)
	}
	return c, nil
}
