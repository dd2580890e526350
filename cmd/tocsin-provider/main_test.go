package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/testkit"
)

// The reference provider, given credentials NATS refuses (revoked, or
// from another Tocsin), must exit with a message that says so and what to
// do, not retry in silence.
func TestRefusedCredentialsEndTheProvider(t *testing.T) {
	e, _ := testkit.MustEmbedded(t, t.TempDir(), slog.New(slog.DiscardHandler))
	// Credentials from another Tocsin's keys.
	other, err := natsbus.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	account, _ := natsbus.NewProviderAccountKey()
	stale, err := other.ProviderUser(natsbus.ProviderAccount{ID: "cmcc", Account: account}, natsbus.ProviderLimits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"creds", "credentials"} {
		t.Run(form, func(t *testing.T) {
			var args []string
			if form == "creds" {
				file := filepath.Join(t.TempDir(), "cmcc.creds")
				if err := os.WriteFile(file, []byte(stale.Text), 0o600); err != nil {
					t.Fatal(err)
				}
				args = []string{"--creds", file, "--id", "cmcc", "--url", e.ClientURL()}
			} else {
				// A demo-providers.json from an earlier run.
				creds, _ := json.Marshal(map[string]credentials{
					"cmcc": {Provider: "cmcc", URL: e.ClientURL(), Creds: stale.Text},
				})
				file := filepath.Join(t.TempDir(), "demo-providers.json")
				if err := os.WriteFile(file, creds, 0o600); err != nil {
					t.Fatal(err)
				}
				args = []string{"--credentials", file, "--id", "cmcc"}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			err = run(ctx, args, &stderr)
			if ctx.Err() != nil {
				t.Fatalf("the provider was still retrying after 30 s:\n%s", stderr.String())
			}
			if err == nil || !strings.Contains(err.Error(), "credentials refused by NATS") || !strings.Contains(err.Error(), "rotate") {
				t.Fatalf("run = %v, want an error saying the credentials were refused", err)
			}
			if !strings.Contains(stderr.String(), "NATS refused the credentials") {
				t.Errorf("log does not say why it stopped:\n%s", stderr.String())
			}
		})
	}
}
