package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestRetentionBelowFiveMonthsIsRefused(t *testing.T) {
	tests := []struct {
		retention string
		ok        bool
	}{
		{"4mo", false}, {"150d", false}, {"0d", false}, {"six months", false},
		{"5mo", true}, {"153d", true}, {"180d", true}, {"6mo", true},
	}
	for _, tt := range tests {
		t.Run(tt.retention, func(t *testing.T) {
			_, err := parseServeConfig([]string{"--retention", tt.retention}, noEnv, io.Discard, false)
			if (err == nil) != tt.ok {
				t.Fatalf("--retention %s: err = %v, want ok=%v", tt.retention, err, tt.ok)
			}
			if !tt.ok && tt.retention == "4mo" && !strings.Contains(err.Error(), "five months") {
				t.Fatalf("message does not say why: %v", err)
			}
		})
	}
}

func TestPurgeRemovesExactlyTheFinishedBroadcastsPastRetention(t *testing.T) {
	dir := t.TempDir()
	file := func(s *server, token, title string) string {
		t.Helper()
		got := call(t, "POST", s.base+"/api/v1/broadcasts", token,
			`{"title":"`+title+`","content":"【广东省气象局】防汛宣传。","scope":["440000"],"send_at":"2026-06-01T09:00:00+08:00"}`)
		if got.status != http.StatusCreated {
			t.Fatalf("file %s: %d %v", title, got.status, got.body)
		}
		return got.body["id"].(string)
	}
	reject := func(s *server, token, id string) {
		t.Helper()
		if got := call(t, "POST", s.base+"/api/v1/broadcasts/"+id+"/reject", token, `{"reason_code":"other","reason":"test"}`); got.status != http.StatusOK {
			t.Fatalf("reject %s: %d %v", id, got.status, got.body)
		}
	}

	s := startServer(t, dir, "demo", "--no-simulators", "--now", "2026-03-02T10:00:00+08:00")
	tokens := demoTokens(t, dir)
	old := file(s, tokens["gd-met"], "old")
	young := file(s, tokens["gd-met"], "young")
	pending := file(s, tokens["gd-met"], "pending")
	reject(s, tokens["gd-cab"], old)
	s.stop()

	s = startServer(t, dir, "demo", "--no-simulators", "--now", "2026-04-02T10:00:00+08:00")
	reject(s, tokens["gd-cab"], young)
	s.stop()

	// Five months and a day after the first rejection.
	s = startServer(t, dir, "demo", "--no-simulators", "--now", "2026-08-03T10:00:00+08:00", "--retention", "5mo")
	for id, want := range map[string]int{old: http.StatusNotFound, young: http.StatusOK, pending: http.StatusOK} {
		if got := call(t, "GET", s.base+"/api/v1/broadcasts/"+id, tokens["gd-met"], ""); got.status != want {
			t.Errorf("GET %s after the purge: %d, want %d", id, got.status, want)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"records", "purge", "--dry-run", "--server", s.base, "--data", dir}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var dry struct {
		Purged []struct{ ID string } `json:"purged"`
	}
	if err := json.Unmarshal(out.Bytes(), &dry); err != nil || len(dry.Purged) != 0 {
		t.Fatalf("dry run after the purge = %s (%v)", out.String(), err)
	}

	// The records export still holds what is kept.
	out.Reset()
	err := run(context.Background(), []string{"records", "export", "--from", "2026-01-01", "--to", "2026-12-31", "--server", s.base, "--data", dir}, noEnv, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "broadcast_id" {
		t.Fatalf("export = %v, want a header and the two kept broadcasts", rows)
	}
	s.stop()

	out.Reset()
	if err := run(context.Background(), []string{"audit", "verify", "--data", dir}, noEnv, &out, io.Discard); err != nil {
		t.Fatalf("audit trail after the purge: %v", err)
	}
}
