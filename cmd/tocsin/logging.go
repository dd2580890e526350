package main

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// loadLogZone returns the zone log times are written in. Tocsin's
// operators, its filers and the State Council's calendar all keep China
// Standard Time, so logs read in it whatever zone the host (often a UTC
// container) is set to. It loads Asia/Shanghai, or on a host without tzdata the fixed
// +08:00 zone it has been since China dropped daylight saving in 1991,
// under the same abbreviation Go's zone database gives it.
func loadLogZone(load func(string) (*time.Location, error)) *time.Location {
	if loc, err := load("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*60*60)
}

// newLogger returns the process's logger, text or JSON on w, with record
// times in China Standard Time, showing Tocsin's records at level and above.
//
// The handler underneath passes everything; levels are applied by a
// filter per logger, so the embedded NATS server's logger (natsLogger)
// can be more or less verbose than Tocsin's own while both write through
// one handler, one record at a time.
func newLogger(w io.Writer, level slog.Level, json bool) *slog.Logger {
	zone := loadLogZone(time.LoadLocation)
	opts := &slog.HandlerOptions{
		Level: slog.LevelDebug, // the lowest any filter passes
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
				a.Value = slog.TimeValue(a.Value.Time().In(zone))
			}
			return a
		},
	}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if json {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(&levelFilter{next: h, min: level})
}

// natsLogger is the logger for the embedded nats-server, derived from
// Tocsin's: at WARN and above, since its INFO notices (every client
// connection, every JetStream detail) would drown Tocsin's own, or above
// if --log-level is error; with
// debug (--nats-debug), everything down to its debug and trace lines,
// whatever --log-level says. The server produces debug and trace lines
// only for a logger that shows them (StartEmbedded asks).
func natsLogger(log *slog.Logger, debug bool) *slog.Logger {
	h := log.Handler()
	min := slog.LevelWarn
	if f, ok := h.(*levelFilter); ok {
		h = f.next            // the server gets a filter of its own,
		min = max(min, f.min) // as quiet as Tocsin's when that is quieter
	}
	if debug {
		min = slog.LevelDebug
	}
	return slog.New(&levelFilter{next: h, min: min})
}

// levelFilter passes records at min and above to next.
type levelFilter struct {
	next slog.Handler
	min  slog.Level
}

func (f *levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.next.Enabled(ctx, l)
}

func (f *levelFilter) Handle(ctx context.Context, r slog.Record) error {
	return f.next.Handle(ctx, r)
}

func (f *levelFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &levelFilter{next: f.next.WithAttrs(attrs), min: f.min}
}

func (f *levelFilter) WithGroup(name string) slog.Handler {
	return &levelFilter{next: f.next.WithGroup(name), min: f.min}
}
