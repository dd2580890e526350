package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// progressEvent is a broadcast's dispatch progress as a stream sends it:
// the numbers, and the words to show in the page's language.
type progressEvent struct {
	ID          string          `json:"id"`
	Status      tocsin.Status   `json:"status"`
	StatusLabel string          `json:"status_label"`
	Final       bool            `json:"final"`
	Summary     string          `json:"summary"`
	Providers   []providerEvent `json:"providers"`
}

type providerEvent struct {
	Provider    string `json:"provider"`
	Status      string `json:"status"`
	StatusLabel string `json:"status_label"`
	Value       int    `json:"value"`
	Max         int    `json:"max"`
	Counts      string `json:"counts"`
	Late        bool   `json:"late"`
}

func progressOf(l localizer, b *tocsin.Broadcast) progressEvent {
	e := progressEvent{
		ID: b.ID, Status: b.Status, StatusLabel: l.Code("status", b.Status), Final: b.Status.Final(),
		Summary: summaryText(l, summarize(b)), Providers: []providerEvent{},
	}
	for _, pp := range b.Providers {
		v, m := bar(pp)
		e.Providers = append(e.Providers, providerEvent{
			Provider: pp.Provider, Status: string(pp.Status), StatusLabel: l.Code("delivery", pp.Status),
			Value: v, Max: m, Counts: countsText(l, pp), Late: pp.Late,
		})
	}
	return e
}

// countsText says how far one provider has got.
func countsText(l localizer, pp tocsin.ProviderProgress) string {
	if pp.Recipients == 0 && pp.Sent == 0 {
		return l.S("progress.no_counts")
	}
	return l.S("progress.counts", pp.Delivered, pp.Failed, pp.Recipients)
}

func summaryText(l localizer, p progressView) string {
	if p.Providers == 0 {
		return l.S("progress.no_providers")
	}
	return l.S("progress.summary", p.Finished, p.Providers, p.Delivered, p.Failed)
}

// Stream limits: a heartbeat comment keeps proxies from closing an idle
// stream, a write that takes longer than writeWait means the client is
// gone, and after maxStream the server ends the stream (the browser's
// EventSource reconnects) so no connection lives forever.
const (
	heartbeat = 15 * time.Second
	writeWait = 10 * time.Second
	maxStream = 30 * time.Minute
)

// stream sends poll's value as a Server-Sent Event named event whenever it
// changes, polling every PollInterval, until the client leaves, the value
// is final (then it sends "done"), or maxStream passes. Each connection
// has its own goroutine and its own deadline, so a slow client holds up
// only itself.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, event string, poll func(ctx context.Context) (any, bool, error)) error {
	ctx := r.Context()
	v, final, err := poll(ctx)
	if err != nil {
		return err // nothing sent yet: an error page
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var last []byte
	send := func(name string, v any) bool {
		data, err := json.Marshal(v)
		if err != nil {
			s.Log.ErrorContext(ctx, "event stream: encode", slog.Any("error", err))
			return false
		}
		if name == event && bytes.Equal(data, last) {
			return true
		}
		_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data); err != nil {
			return false
		}
		if name == event {
			last = data
		}
		return rc.Flush() == nil
	}
	_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return nil
	}
	if !send(event, v) {
		return nil
	}
	if final {
		send("done", struct{}{})
		return nil
	}

	tick := time.NewTicker(s.PollInterval)
	defer tick.Stop()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	end := time.NewTimer(maxStream)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.streamsDone:
			return nil
		case <-end.C:
			return nil
		case <-beat.C:
			_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return nil
			}
		case <-tick.C:
			v, final, err := poll(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.Log.WarnContext(ctx, "event stream: poll", slog.Any("error", err))
				}
				return nil
			}
			if !send(event, v) {
				return nil
			}
			if final {
				send("done", struct{}{})
				return nil
			}
		}
	}
}

// broadcastEvents streams one broadcast's progress until it is final.
func (s *Server) broadcastEvents(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	id := chi.URLParam(r, "id")
	l := s.localizer(langFrom(r.Context()))
	return s.stream(w, r, "progress", func(ctx context.Context) (any, bool, error) {
		b, err := s.Service.Get(ctx, a, id)
		if err != nil {
			return nil, false, err
		}
		return progressOf(l, b), b.Status.Final(), nil
	})
}

// boardEvents streams the emergency board: every emergency on it, as long
// as the board is open.
func (s *Server) boardEvents(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	l := s.localizer(langFrom(r.Context()))
	return s.stream(w, r, "board", func(ctx context.Context) (any, bool, error) {
		bs, err := s.board(ctx, a)
		if err != nil {
			return nil, false, err
		}
		out := struct {
			Broadcasts []progressEvent `json:"broadcasts"`
		}{Broadcasts: []progressEvent{}}
		for _, b := range bs {
			out.Broadcasts = append(out.Broadcasts, progressOf(l, b))
		}
		return out, false, nil
	})
}
