package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// tocsinCLI runs a command against a running server with the data
// folder's key, and returns its standard output.
func tocsinCLI(t *testing.T, s *server, args ...string) (string, error) {
	t.Helper()
	var stdout bytes.Buffer
	args = append(args, "--server", s.base, "--data", s.data)
	err := run(context.Background(), args, noEnv, &stdout, io.Discard)
	return strings.TrimSpace(stdout.String()), err
}

func TestTokensThroughTheRunningServer(t *testing.T) {
	s := startServer(t, t.TempDir(), "demo", "--no-simulators")
	token, err := tocsinCLI(t, s, "token", "issue", "--org", "gd-met", "--ttl", "1h", "--name", "test")
	if err != nil {
		t.Fatal(err)
	}
	if got := call(t, "GET", s.base+"/api/v1/broadcasts", token, ""); got.status != http.StatusOK {
		t.Fatalf("the issued token: %d %v", got.status, got.body)
	}
	for _, args := range [][]string{
		{"token", "issue", "--org", "gd-met", "--role", "regulator"},           // claims are the store's
		{"token", "issue", "--org", "gd-met", "--jur", "450000"},               // ditto
		{"token", "issue", "--org", "ghost"},                                   // not stored
		{"token", "issue", "--org", "cmcc"},                                    // a provider
		{"token", "issue", "--org", "gd-met", "--as", "gd-met"},                // a CLI token only for an admin
		{"token", "issue", "--org", "gd-met", "--ttl", "1h", "--as", "nobody"}, // nor for an unknown one
	} {
		if out, err := tocsinCLI(t, s, args...); err == nil {
			t.Errorf("%v: no error, printed %q", args, out)
		}
	}
	list, err := tocsinCLI(t, s, "token", "list", "--org", "gd-met")
	if err != nil {
		t.Fatal(err)
	}
	var listed struct {
		Tokens []struct{ ID, Name string }
	}
	if err := json.Unmarshal([]byte(list), &listed); err != nil {
		t.Fatalf("token list: %v\n%s", err, list)
	}
	names := map[string]bool{}
	for _, tok := range listed.Tokens {
		names[tok.Name] = true
	}
	if !names["test"] || !names["demo"] {
		t.Fatalf("gd-met's tokens = %s, want the one just issued and the demo's", list)
	}
	// Revoke them all: the issued token and the demo's are then refused.
	for _, tok := range listed.Tokens {
		if _, err := tocsinCLI(t, s, "token", "revoke", tok.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got := call(t, "GET", s.base+"/api/v1/broadcasts", token, ""); got.status != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d %v, want 401", got.status, got.body)
	}
	if got := call(t, "GET", s.base+"/api/v1/broadcasts", demoTokens(t, s.data)["gd-met"], ""); got.status != http.StatusUnauthorized {
		t.Errorf("the revoked demo token: %d, want 401", got.status)
	}
}

func TestSessionCookieIsNoBearerToken(t *testing.T) {
	s := startServer(t, t.TempDir(), "demo", "--no-simulators")
	form := url.Values{"username": {"admin"}, "password": {DemoPassword}}
	req, err := http.NewRequest(http.MethodPost, s.base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "tocsin_session" {
			cookie = c.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == "" {
		t.Fatalf("login: %d, cookie %q", resp.StatusCode, cookie)
	}
	if got := call(t, "GET", s.base+"/api/v1/organisations", cookie, ""); got.status != http.StatusUnauthorized {
		t.Errorf("the session cookie as a bearer token: %d %v, want 401", got.status, got.body)
	}
}

func TestCLIActsForTheStoredOperator(t *testing.T) {
	s := startServer(t, t.TempDir(), "serve") // no seed: the operator's organisation is created at start
	if _, err := tocsinCLI(t, s, "token", "list"); err != nil {
		t.Fatalf("token list on a fresh data folder: %v", err)
	}
}
