package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCalendarCommand(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{"earliest", []string{"calendar", "earliest", "2026-09-18"}, "2026-10-09\n", ""},
		{"earliest before spring festival", []string{"calendar", "earliest", "2026-02-10"}, "2026-03-02\n", ""},
		{"flag after positional", []string{"calendar", "earliest", "2025-12-25", "--calendars", ""}, "2026-01-09\n", ""},
		{"missing year", []string{"calendar", "earliest", "2027-03-01"}, "", "2027"},
		{"walks into missing year", []string{"calendar", "earliest", "2026-12-28"}, "", "2027"},
		{"bad date", []string{"calendar", "earliest", "26-1-1"}, "", "YYYY-MM-DD"},
		{"days", []string{"calendar", "days", "2026-02-14", "2026-02-15"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, noEnv, &stdout, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v (stderr %s)", err, stderr.String())
			}
			if tt.want != "" && stdout.String() != tt.want {
				t.Fatalf("stdout = %q, want %q", stdout.String(), tt.want)
			}
		})
	}
}

func TestCalendarDaysExplains(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"calendar", "days", "2026-02-13", "2026-02-16"}, noEnv, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), stdout.String())
	}
	for i, want := range []string{"2026-02-13", "make-up", "春节", "春节"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want it to mention %q", i, lines[i], want)
		}
	}
}

func noEnv(string) string { return "" }

// server is a tocsin run in this process, on a port from the OS.
type server struct {
	base   string
	data   string
	cancel context.CancelFunc
	done   chan error
}

// startServer runs "tocsin <cmd> --data dir --http 127.0.0.1:0" and waits
// until it prints its address.
func startServer(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &server{data: dir, cancel: cancel, done: make(chan error, 1)}
	all := append([]string{}, args...)
	all = append(all, "--data", dir, "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "warn")
	go func() {
		err := run(ctx, all, noEnv, pw, io.Discard)
		pw.CloseWithError(err)
		s.done <- err
	}()
	found := listeningAddr(pr)
	select {
	case addr, ok := <-found:
		if !ok {
			cancel()
			t.Fatalf("server exited: %v", <-s.done)
		}
		s.base = addr
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start")
	}
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel = nil
}

func demoTokens(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "demo-tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	if err := json.Unmarshal(data, &tokens); err != nil {
		t.Fatal(err)
	}
	return tokens
}

type apiResult struct {
	status int
	body   map[string]any
}

func call(t *testing.T, method, url, token, body string) apiResult {
	t.Helper()
	return callWith(t, method, url, token, "application/json", body)
}

// callWith is call with a body of another content type.
func callWith(t *testing.T, method, url, token, contentType, body string) apiResult {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: decode: %v", method, url, err)
	}
	return apiResult{resp.StatusCode, out}
}

func TestDemoSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators")
	tokens := demoTokens(t, dir)
	for _, id := range []string{"admin", "miit", "gd-cab", "gx-cab", "mem", "gd-met", "gx-health", "gz-em"} {
		if tokens[id] == "" {
			t.Errorf("demo-tokens.json has no token for %s", id)
		}
	}
	for _, name := range []string{"keys/jwt.pem", "keys/jwt.pub.pem"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("data folder lacks %s: %v", name, err)
		}
	}
	filed := call(t, "POST", s.base+"/api/v1/broadcasts", tokens["gd-met"],
		`{"title":"暴雨预警","content":"【广东省气象局】今夜有暴雨，请注意防范。","scope":["440100"],"emergency":{"type":"natural_disaster","event":"rainstorm","level":"orange"}}`)
	if filed.status != http.StatusCreated {
		t.Fatalf("emergency filing: %d %v", filed.status, filed.body)
	}
	id := filed.body["id"].(string)
	s.stop()

	s = startServer(t, dir, "demo", "--no-simulators")
	got := call(t, "GET", s.base+"/api/v1/broadcasts/"+id, tokens["gd-met"], "")
	if got.status != http.StatusOK || got.body["content"] != filed.body["content"] {
		t.Fatalf("after restart: %d %v", got.status, got.body)
	}
	// The tokens are stored credentials, kept while they are valid, so the
	// file still holds the ones scripts read before the restart.
	if again := demoTokens(t, dir); again["gd-met"] != tokens["gd-met"] || again["admin"] != tokens["admin"] {
		t.Errorf("demo-tokens.json changed across the restart")
	}
}

func TestServeRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--http"},
		{"serve", "extra"},
		{"demo", "--now", "yesterday"},
		{"frobnicate"},
	} {
		err := run(context.Background(), args, noEnv, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}

func TestDemoNowSetsTheClock(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators", "--now", "2026-09-18T10:00:00+08:00")
	got := call(t, "GET", s.base+"/api/v1/calendar/earliest", "", "")
	if got.body["filed"] != "2026-09-18" || got.body["earliest_send_date"] != "2026-10-09" {
		t.Fatalf("earliest under the demo clock = %v", got.body)
	}
}

func TestProviderAddThroughTheRunningServer(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators")
	var stdout bytes.Buffer
	credsFile := filepath.Join(t.TempDir(), "gx-mobile.creds")
	err := run(context.Background(), []string{"provider", "add", "--server", s.base, "--data", dir,
		"--id", "gx-mobile", "--name", "Guangxi Mobile", "--regions", "450000", "--creds-out", credsFile}, noEnv, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var creds map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &creds); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	for _, k := range []string{"url", "user", "creds", "account", "stream", "consumer"} {
		if creds[k] == "" || creds[k] == nil {
			t.Errorf("credentials lack %s: %v", k, creds)
		}
	}
	file, err := os.ReadFile(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(credsFile); info.Mode().Perm() != 0o600 || string(file) != creds["creds"] ||
		!strings.HasPrefix(string(file), "-----BEGIN NATS USER JWT-----") {
		t.Errorf("--creds-out wrote %v:\n%s", info.Mode().Perm(), file)
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"provider", "list", "--server", s.base, "--data", dir}, noEnv, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "gx-mobile") || strings.Contains(stdout.String(), "NATS USER") {
		t.Fatalf("provider list = %s", stdout.String())
	}
}

// listeningAddr watches a tocsin's standard output for the address it
// serves on; the channel closes without one if the output ends first.
func listeningAddr(stdout io.Reader) <-chan string {
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "tocsin: listening on "); ok {
				found <- addr
			}
		}
		close(found)
	}()
	return found
}
