package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The coordinator's /metrics, as Prometheus scrapes it, carries the series
// serve wires (gauges read from the store and NATS, the dispatcher's and
// the filing handler's), the runtime collectors and a bounded method label.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators")
	tokens := demoTokens(t, dir)
	filed := call(t, "POST", s.base+"/api/v1/broadcasts", tokens["gd-met"],
		`{"title":"暴雨预警","content":"【广东省气象局】今夜有暴雨，请注意防范。","scope":["440100"],"emergency":{"type":"natural_disaster","event":"rainstorm","level":"orange"}}`)
	if filed.status != http.StatusCreated {
		t.Fatalf("emergency filing: %d %v", filed.status, filed.body)
	}
	req, err := http.NewRequest("BREW", s.base+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}

	res, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", res.StatusCode, body)
	}
	for _, want := range []string{
		"tocsin_nats_connected 1",
		"tocsin_outbox_backlog ",
		"tocsin_emergency_dispatches_late ",
		`tocsin_filings_total{kind="emergency"} 1`,
		`tocsin_filing_durable_seconds_count{kind="emergency"} 1`,
		`tocsin_http_requests_total{code="201",method="POST"} 1`,
		`method="other"`,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(body), "BREW") {
		t.Errorf("/metrics has a series for the made-up method BREW")
	}
}
