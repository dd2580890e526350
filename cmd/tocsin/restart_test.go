package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
)

// restartStarts is how many times TestRestartLoop starts the same data
// folder.
const restartStarts = 20

// TestRestartLoop starts the same data folder, with the demo's providers
// registered, restartStarts times in a row. After each start /readyz must
// say ready, and one emergency filed then must reach both providers it
// concerns (read with their own consumers) within 5 s; if it does not,
// /readyz must not be saying ready about it. Each run ends with SIGTERM,
// which must stop it within 5 s, or every fifth with kill -9.
func TestRestartLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process 20 times")
	}
	if _, err := buildTocsin(); err != nil { // not in the first start's figure
		t.Fatal(err)
	}
	began := time.Now()
	dir := t.TempDir()
	in := newProviderInbox(dir)
	guangzhou := []string{"cmcc", "cucc"}
	var startups, readies, deliveries, stops []time.Duration
	for r := range restartStarts {
		started := time.Now()
		p := startProcess(t, dir, "demo", "--no-simulators")
		startups = append(startups, time.Since(started))
		readyIn, err := awaitReady(p.base, 10*time.Second)
		if err != nil {
			t.Fatalf("start %d: %v", r, err)
		}
		readies = append(readies, readyIn)

		pulls := in.pullAll(t, guangzhou...)
		id, status, body := fileDrill(p.base, demoTokens(t, dir)["gd-met"], fmt.Sprintf("【广东省气象局】第 %d 次启动", r))
		if status != http.StatusCreated {
			t.Fatalf("start %d: filing: %d %s", r, status, body)
		}
		filed := time.Now()
		if err := in.await(5*time.Second, []string{id}, guangzhou); err != nil {
			t.Fatalf("start %d: emergency %s not delivered within 5 s: %v\n/readyz then: %s\n%s",
				r, id, err, readyzBody(p.base), readinessDuringStall(p.base, filed))
		}
		deliveries = append(deliveries, time.Since(filed))
		pulls.stop(t)

		if r%5 == 4 {
			p.kill()
			continue
		}
		stopped := time.Now()
		p.stopGracefully(t, 5*time.Second)
		stops = append(stops, time.Since(stopped))
	}
	t.Logf("%d starts in %s: start to listening %s; to /readyz 200 %s; emergency filed to both providers %s; SIGTERM to exit %s",
		restartStarts, time.Since(began).Round(time.Millisecond),
		spread(startups), spread(readies), spread(deliveries), spread(stops))
}

// awaitReady polls /readyz until it answers 200, and says how long that
// took; past timeout it returns the last answer as the error.
func awaitReady(base string, timeout time.Duration) (time.Duration, error) {
	began := time.Now()
	client := &http.Client{Timeout: 5 * time.Second}
	last := ""
	for time.Since(began) < timeout {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(began), nil
			}
		}
		last = readyzBody(base)
		time.Sleep(50 * time.Millisecond) // polling an HTTP endpoint: nothing to wait on
	}
	return 0, fmt.Errorf("/readyz not 200 within %s of listening; last: %s", timeout, last)
}

// readinessDuringStall watches /readyz while a filing made at filed is
// stuck: once the outbox stall threshold has passed it must say 503. It
// returns what it saw, for the failure message.
func readinessDuringStall(base string, filed time.Time) string {
	deadline := filed.Add(natsbus.OutboxStallAfter + 3*time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		body := readyzBody(base)
		at := time.Since(filed).Round(100 * time.Millisecond)
		seen = append(seen, fmt.Sprintf("  %s after filing: %s", at, body))
		if strings.HasPrefix(body, "503 ") && at > natsbus.OutboxStallAfter {
			return "readiness during the stall:\n" + strings.Join(seen, "\n")
		}
		time.Sleep(500 * time.Millisecond) // sampling /readyz over the stall
	}
	return fmt.Sprintf("READINESS LIED: /readyz never said 503 within %s of a stuck filing:\n%s",
		natsbus.OutboxStallAfter+3*time.Second, strings.Join(seen, "\n"))
}

// stopGracefully sends SIGTERM and requires a clean exit within timeout.
// If it hangs, SIGQUIT makes the Go runtime print every goroutine (to the
// test's stderr) before the process is killed: that is the evidence.
func (p *process) stopGracefully(t *testing.T, timeout time.Duration) {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("tocsin did not exit cleanly on SIGTERM: %v", err)
		}
		return
	case <-time.After(timeout):
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	fmt.Fprintln(os.Stderr, "(the goroutine dump above is tocsin's, hung after SIGTERM)")
	t.Fatalf("tocsin did not exit within %s of SIGTERM (goroutines dumped to stderr)", timeout)
}

// spread summarises durations as median and maximum.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("median %s max %s", s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}
