package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// busyPort holds a loopback port for the test and returns its address.
func busyPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// A failed start says what failed and exits with an error, promptly; the
// first wave panicked on a nil coordinator and hid the reason.
func TestFailedStartSaysWhy(t *testing.T) {
	locked := t.TempDir()
	startServer(t, locked, "demo", "--no-simulators")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"HTTP port in use", []string{"serve", "--data", t.TempDir(), "--http", busyPort(t), "--nats-listen", "127.0.0.1:0"},
			[]string{"HTTP address", "address already in use"}},
		{"NATS port in use", []string{"serve", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-listen", busyPort(t)},
			[]string{"nats", "address already in use"}},
		{"data folder in use", []string{"serve", "--data", locked, "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"},
			[]string{"locked by another process", "already running"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			err := run(ctx, append(tt.args, "--log-level", "error"), noEnv, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("run succeeded")
			}
			if ctx.Err() != nil {
				t.Fatalf("run took until the deadline: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A graceful stop does not wait for open progress streams: they end when
// shutdown begins.
func TestStopEndsOpenEventStreams(t *testing.T) {
	s := startServer(t, t.TempDir(), "demo", "--no-simulators")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	res, err := client.PostForm(s.base+"/login", url.Values{"username": {"gd-cab"}, "password": {DemoPassword}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	streams := 3
	firstEvent := make(chan error, streams)
	ended := make(chan struct{}, streams)
	for range streams {
		go func() {
			defer func() { ended <- struct{}{} }()
			res, err := client.Get(s.base + "/emergencies/events")
			if err != nil {
				firstEvent <- err
				return
			}
			defer res.Body.Close()
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				firstEvent <- errors.New("not an event stream: " + res.Status + " " + ct)
				return
			}
			sc := bufio.NewScanner(res.Body)
			sent := false
			for sc.Scan() {
				if !sent && strings.HasPrefix(sc.Text(), "data:") {
					firstEvent <- nil
					sent = true
				}
			}
		}()
	}
	for range streams {
		if err := <-firstEvent; err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	s.stop()
	took := time.Since(start)
	t.Logf("stopped in %s with %d streams open", took.Round(time.Millisecond), streams)
	if took > 5*time.Second {
		t.Errorf("stop took %s with event streams open, want under 5 s", took)
	}
	for range streams {
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("an event stream did not end")
		}
	}
}
