package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/provider"
)

func demoProviders(t *testing.T, dir string) map[string]natsbus.Credentials {
	t.Helper()
	path := filepath.Join(dir, "demo-providers.json")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("demo-providers.json has mode %o, want 600: it holds NATS user seeds", mode)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]natsbus.Credentials{}
	if err := json.Unmarshal(data, &creds); err != nil {
		t.Fatal(err)
	}
	return creds
}

// A demo restart keeps the providers' NATS credentials, so reference
// providers run by hand (--no-simulators) are not locked out; a provider
// whose recorded credentials are no longer its current user's is
// registered afresh.
func TestDemoRestartKeepsProviderCredentials(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators")
	first := demoProviders(t, dir)
	for _, id := range []string{"cmcc", "cucc", "ctcc"} {
		if !strings.HasPrefix(first[id].Creds, "-----BEGIN NATS USER JWT-----") {
			t.Fatalf("demo-providers.json has no .creds text for %s: %v", id, first)
		}
	}
	s.stop()

	// Someone's copy went stale (or was edited): that provider alone is
	// issued new credentials.
	stale := first["cucc"]
	stale.Creds = first["cmcc"].Creds
	edited := map[string]natsbus.Credentials{"cmcc": first["cmcc"], "cucc": stale, "ctcc": first["ctcc"]}
	data, _ := json.Marshal(edited)
	if err := os.WriteFile(filepath.Join(dir, "demo-providers.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}

	s = startServer(t, dir, "demo", "--no-simulators")
	second := demoProviders(t, dir)
	for _, id := range []string{"cmcc", "ctcc"} {
		if second[id].Creds != first[id].Creds || second[id].UserKey != first[id].UserKey {
			t.Errorf("%s was issued new credentials by the restart", id)
		}
	}
	if p := second["cucc"]; p.Creds == "" || p.Creds == first["cmcc"].Creds || p.UserKey == first["cucc"].UserKey {
		t.Errorf("cucc, whose recorded credentials no longer matched, was not re-registered: %+v", p)
	}

	// The first run's credentials still pull: cmcc gets an emergency filed
	// after the restart. (The URL is this run's: the test servers listen
	// on a port the OS picks each start.)
	got := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	client, err := provider.Connect(ctx, provider.Config{URL: second["cmcc"].URL, ID: "cmcc",
		Creds: first["cmcc"].Creds, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- client.Run(ctx, func(ctx context.Context, d provider.Dispatch, r *provider.Reporter) error {
			select {
			case got <- d.BroadcastID:
			default:
			}
			return r.Done(ctx, 1, 1, 1, 0, "")
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		client.Close()
	})
	filed := call(t, "POST", s.base+"/api/v1/broadcasts", demoTokens(t, dir)["gd-met"],
		`{"title":"台风红色预警","content":"【广东省气象局】台风将于今夜登陆，请留在室内。","scope":["440100"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"red"}}`)
	if filed.status != http.StatusCreated {
		t.Fatalf("emergency filing: %d %v", filed.status, filed.body)
	}
	select {
	case id := <-got:
		if id != filed.body["id"] {
			t.Fatalf("cmcc received %s, want %s", id, filed.body["id"])
		}
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("cmcc's client stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("cmcc, connected with the first run's credentials, received nothing within 30 s")
	}
}
