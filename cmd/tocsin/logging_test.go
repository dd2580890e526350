package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
)

// at logs msg through log's handler as if it happened at t, so the time
// written is known.
func at(t *testing.T, log *slog.Logger, when time.Time, level slog.Level, msg string) {
	t.Helper()
	if !log.Enabled(context.Background(), level) {
		return
	}
	if err := log.Handler().Handle(context.Background(), slog.NewRecord(when, level, msg, 0)); err != nil {
		t.Fatal(err)
	}
}

func TestLogTimesInChinaStandardTime(t *testing.T) {
	utcMidnight := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	t.Run("text", func(t *testing.T) {
		var buf bytes.Buffer
		at(t, newLogger(&buf, slog.LevelInfo, false), utcMidnight, slog.LevelInfo, "released")
		if want := "time=2026-07-01T08:00:00.000+08:00 level=INFO msg=released"; !strings.Contains(buf.String(), want) {
			t.Errorf("log line %q, want it to contain %q", buf.String(), want)
		}
	})
	t.Run("json", func(t *testing.T) {
		var buf bytes.Buffer
		at(t, newLogger(&buf, slog.LevelInfo, true), utcMidnight, slog.LevelInfo, "released")
		var rec map[string]any
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatalf("%v: %s", err, buf.String())
		}
		if rec["time"] != "2026-07-01T08:00:00+08:00" {
			t.Errorf("time = %v, want 2026-07-01T08:00:00+08:00", rec["time"])
		}
	})
	t.Run("attributes keep their zone", func(t *testing.T) {
		var buf bytes.Buffer
		log := newLogger(&buf, slog.LevelInfo, false)
		log.Info("demo clock set", slog.Time("now", utcMidnight))
		if !strings.Contains(buf.String(), "now=2026-07-01T00:00:00.000Z") {
			t.Errorf("log line %q: a time attribute was converted", buf.String())
		}
	})
}

func TestLogZoneWithoutTZData(t *testing.T) {
	zone := loadLogZone(func(string) (*time.Location, error) { return nil, errors.New("no tzdata") })
	got := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).In(zone)
	if name, offset := got.Zone(); name != "CST" || offset != 8*3600 {
		t.Errorf("fallback zone = %s %+d, want CST +28800", name, offset)
	}
	// On a host with tzdata, the database's zone agrees with the fallback.
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		real := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC).In(loc)
		if name, offset := real.Zone(); name != "CST" || offset != 8*3600 {
			t.Errorf("Asia/Shanghai = %s %+d, want CST +28800", name, offset)
		}
	}
}

func TestNATSServerLogLevel(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name      string
		level     slog.Level // --log-level
		natsDebug bool
		shown     []slog.Level
		hidden    []slog.Level
	}{
		{"default hides its notices", slog.LevelInfo, false, []slog.Level{slog.LevelWarn, slog.LevelError}, []slog.Level{slog.LevelInfo, slog.LevelDebug}},
		{"--log-level debug alone does not change it", slog.LevelDebug, false, []slog.Level{slog.LevelWarn}, []slog.Level{slog.LevelInfo, slog.LevelDebug}},
		{"--nats-debug shows all", slog.LevelInfo, true, []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn}, nil},
		{"--log-level error hides its warnings too", slog.LevelError, false, []slog.Level{slog.LevelError}, []slog.Level{slog.LevelWarn, slog.LevelInfo}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := newLogger(&buf, c.level, false)
			nats := natsLogger(log.With(slog.String("component", "nats-server")), c.natsDebug)
			for _, l := range c.shown {
				buf.Reset()
				at(t, nats, now, l, "nats line")
				if !strings.Contains(buf.String(), "nats line") {
					t.Errorf("nats-server's %v line hidden", l)
				}
			}
			for _, l := range c.hidden {
				buf.Reset()
				at(t, nats, now, l, "nats line")
				if buf.Len() > 0 {
					t.Errorf("nats-server's %v line shown: %s", l, buf.String())
				}
			}
			// Tocsin's own logger keeps --log-level.
			buf.Reset()
			at(t, log, now, slog.LevelInfo, "tocsin line")
			if shown := buf.Len() > 0; shown != (c.level <= slog.LevelInfo) {
				t.Errorf("Tocsin's INFO line shown = %v at --log-level %v", shown, c.level)
			}
		})
	}
}

// The real embedded server, started as the coordinator starts it, says
// nothing below WARN by default, and its notices and debug lines with
// --nats-debug.
func TestEmbeddedNATSServerLogs(t *testing.T) {
	for _, debug := range []bool{false, true} {
		var buf lockedBuffer
		log := newLogger(&buf, slog.LevelInfo, false)
		dir := t.TempDir()
		keys, err := natsbus.LoadKeys(dir)
		if err != nil {
			t.Fatal(err)
		}
		e, err := natsbus.StartEmbedded(dir, "127.0.0.1:0", keys, natsLogger(log, debug))
		if err != nil {
			t.Fatal(err)
		}
		e.Shutdown()
		notices, debugs := 0, 0
		for _, line := range strings.Split(buf.String(), "\n") {
			if strings.Contains(line, "component=nats-server") {
				notices += strings.Count(line, "level=INFO")
				debugs += strings.Count(line, "level=DEBUG")
			}
		}
		if debug && (notices == 0 || debugs == 0) {
			t.Errorf("--nats-debug: %d notices and %d debug lines from nats-server, want some of each:\n%s", notices, debugs, buf.String())
		}
		if !debug && notices+debugs > 0 {
			t.Errorf("without --nats-debug, %d notices and %d debug lines from nats-server:\n%s", notices, debugs, buf.String())
		}
	}
}

// lockedBuffer is a bytes.Buffer the server's goroutines may write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
