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

	"golang.org/x/crypto/bcrypt"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
)

// The reference provider, given a password NATS refuses (as after a
// re-registration), must exit with a message that says so and what to do,
// not retry in silence.
func TestRefusedCredentialsEndTheProvider(t *testing.T) {
	hash, err := natsbus.HashPassword("the-real-password", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	e, err := natsbus.StartEmbedded(t.TempDir(), "127.0.0.1:0",
		[]natsbus.ProviderUser{{ID: "cmcc", PasswordHash: hash}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	// A demo-providers.json from an earlier run, holding a stale password.
	creds, _ := json.Marshal(map[string]credentials{
		"cmcc": {Provider: "cmcc", URL: e.ClientURL(), User: "cmcc", Password: "a-stale-password"},
	})
	file := filepath.Join(t.TempDir(), "demo-providers.json")
	if err := os.WriteFile(file, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	err = run(ctx, []string{"--credentials", file, "--id", "cmcc"}, &stderr)
	if ctx.Err() != nil {
		t.Fatal("the provider was still retrying after 30 s")
	}
	if err == nil || !strings.Contains(err.Error(), "credentials refused by NATS") || !strings.Contains(err.Error(), "re-register") {
		t.Fatalf("run = %v, want an error saying the credentials were refused", err)
	}
	if !strings.Contains(stderr.String(), "NATS refused the credentials") {
		t.Errorf("log does not say why it stopped:\n%s", stderr.String())
	}
}
