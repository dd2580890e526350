package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// A data folder from before NATS accounts were JWTs starts: its provider,
// which had a password, is converted to an account, and its new
// credentials are written once to DATA/nats/creds/ID.creds (0600), and
// pull. A restart keeps them.
func TestPasswordEraDataFolderStarts(t *testing.T) {
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "tocsin.db"), region.Default(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("old-password"), bcrypt.MinCost)
	err = store.Update(context.Background(), func(tx tocsin.Tx) error {
		return tx.PutProvider(&tocsin.Provider{ID: "cmcc", Name: "China Mobile", Regions: []string{"440000"},
			NATSUser: "cmcc", NATSPasswordHash: string(hash)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(dir, "nats", "creds", "cmcc.creds")
	for run := range 2 {
		s := startServer(t, dir, "serve")
		info, err := os.Stat(credsFile)
		if err != nil {
			t.Fatalf("start %d: %v", run+1, err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", credsFile, info.Mode().Perm())
		}
		creds, _ := os.ReadFile(credsFile)
		if !strings.HasPrefix(string(creds), "-----BEGIN NATS USER JWT-----") {
			t.Fatalf("%s:\n%s", credsFile, creds)
		}
		var providers struct {
			Providers []struct {
				ID          string `json:"id"`
				Credentials string `json:"credentials"`
			} `json:"providers"`
		}
		adminGet(t, s, dir, "/providers", &providers)
		if len(providers.Providers) != 1 || providers.Providers[0].Credentials != "active" {
			t.Errorf("providers after the conversion: %+v", providers)
		}
		nc, err := nats.Connect(natsURLOf(t, s), nats.UserCredentials(credsFile))
		if err != nil {
			t.Fatalf("start %d: cmcc with its converted credentials: %v", run+1, err)
		}
		js, _ := jetstream.New(nc)
		// The relay makes the consumer as it starts.
		awaitCondition(t, "cmcc sees its consumer", 10*time.Second, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := js.Consumer(ctx, "TOCSIN_DISPATCH", "cmcc"); err != nil {
				return false, err.Error()
			}
			return true, ""
		})
		nc.Close()
		if run == 0 {
			// The file is written once: a second start has nothing to
			// convert and leaves it as it is.
			if err := os.Chtimes(credsFile, time.Unix(1, 0), time.Unix(1, 0)); err != nil {
				t.Fatal(err)
			}
		} else if info.ModTime().Unix() != 1 {
			t.Error("the second start wrote the credentials again")
		}
		s.stop()
	}
}

// adminGet reads an API path through tocsin's own admin client.
func adminGet(t *testing.T, s *server, dir, path string, out any) {
	t.Helper()
	var stdout bytes.Buffer
	fs := newFlagSet("test", io.Discard)
	client := newAdminClient(fs, noEnv)
	if err := fs.Parse([]string{"--server", s.base, "--data", dir}); err != nil {
		t.Fatal(err)
	}
	if err := client.do(context.Background(), http.MethodGet, path, nil, &stdout); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// natsURLOf is the embedded NATS server's URL, as /readyz tells it.
func natsURLOf(t *testing.T, s *server) string {
	t.Helper()
	got := call(t, "GET", s.base+"/readyz", "", "")
	for _, v := range got.body {
		if m, ok := v.(map[string]any); ok {
			if u, ok := m["nats_url"].(string); ok {
				return u
			}
		}
	}
	if u, ok := got.body["nats_url"].(string); ok {
		return u
	}
	t.Fatalf("/readyz names no NATS URL: %v", got.body)
	return ""
}
