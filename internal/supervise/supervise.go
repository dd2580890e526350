// Package supervise keeps Tocsin's background loops running. A loop that
// returns or panics while the process still serves is restarted with capped
// exponential backoff; every failure is logged with what failed and why,
// counted, and visible to readiness until the loop is running again. A
// stopped dispatch loop must never be a silent state.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
)

// Backoff bounds, and how long a loop must run before a failure counts as
// a fresh one rather than part of a crash loop.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	stableAfter       = time.Minute
)

// ErrReturned is what a loop that returned nil while it should still run
// is reported as: a loop has no business ending on its own.
var ErrReturned = errors.New("loop returned while the process still serves")

// Supervisor runs named loops until their context ends.
type Supervisor struct {
	Log *slog.Logger
	// OnUp is told each time a loop starts (true) or fails (false); OnRestart
	// each time one is restarted after a failure. Both may be nil.
	OnUp      func(loop string, up bool)
	OnRestart func(loop string)
	// MinBackoff and MaxBackoff bound the wait before a restart; zero means
	// the defaults.
	MinBackoff, MaxBackoff time.Duration

	wg    sync.WaitGroup
	mu    sync.Mutex
	loops map[string]*state // guarded by mu
}

// state is what the supervisor knows of one loop.
type state struct {
	up       bool
	restarts int
	lastErr  error
	since    time.Time // when up last changed
}

// Status is a loop's state as readiness and the logs see it.
type Status struct {
	Loop     string
	Up       bool
	Restarts int
	LastErr  error
	Since    time.Time
}

// Go runs loop under supervision until ctx ends. A loop must watch ctx and
// return promptly once it is done; its return at any other time is a
// failure.
func (s *Supervisor) Go(ctx context.Context, name string, loop func(context.Context) error) {
	s.mu.Lock()
	if s.loops == nil {
		s.loops = map[string]*state{}
	}
	if _, dup := s.loops[name]; dup {
		s.mu.Unlock()
		panic(fmt.Sprintf("supervise: loop %q started twice", name))
	}
	s.loops[name] = &state{since: time.Now()}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.supervise(ctx, name, loop)
	}()
}

func (s *Supervisor) supervise(ctx context.Context, name string, loop func(context.Context) error) {
	minWait, maxWait := s.MinBackoff, s.MaxBackoff
	if minWait <= 0 {
		minWait = DefaultMinBackoff
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxBackoff
	}
	wait := minWait
	for {
		s.set(name, true, nil)
		started := time.Now()
		err := runOnce(ctx, loop)
		if ctx.Err() != nil {
			s.set(name, false, nil)
			return
		}
		if err == nil {
			err = ErrReturned
		}
		if time.Since(started) > stableAfter {
			wait = minWait
		}
		s.set(name, false, err)
		s.log().Warn("background loop failed; restarting", slog.String("loop", name), slog.Any("error", err), slog.Duration("in", wait))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, maxWait)
		s.mu.Lock()
		s.loops[name].restarts++
		s.mu.Unlock()
		if s.OnRestart != nil {
			s.OnRestart(name)
		}
	}
}

// runOnce runs loop, turning a panic into an error so that one bad
// message cannot take dispatch down for good.
func runOnce(ctx context.Context, loop func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return loop(ctx)
}

func (s *Supervisor) set(name string, up bool, err error) {
	s.mu.Lock()
	st := s.loops[name]
	changed := st.up != up
	st.up, st.since = up, time.Now()
	if err != nil {
		st.lastErr = err
	}
	s.mu.Unlock()
	if changed && s.OnUp != nil {
		s.OnUp(name, up)
	}
}

// Statuses returns every loop's state, sorted by name.
func (s *Supervisor) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.loops))
	for name, st := range s.loops {
		out = append(out, Status{Loop: name, Up: st.up, Restarts: st.restarts, LastErr: st.lastErr, Since: st.since})
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Loop, b.Loop) })
	return out
}

// Down returns the loops not running now, as readiness reasons.
func (s *Supervisor) Down() []string {
	var reasons []string
	for _, st := range s.Statuses() {
		if st.Up {
			continue
		}
		r := fmt.Sprintf("background loop %s is down (restarting)", st.Loop)
		if st.LastErr != nil {
			r = fmt.Sprintf("background loop %s is down since %s (restarting): %v", st.Loop, st.Since.Format(time.RFC3339), firstLine(st.LastErr.Error()))
		}
		reasons = append(reasons, r)
	}
	return reasons
}

// Wait returns once every loop has ended; their context must be done.
func (s *Supervisor) Wait() { s.wg.Wait() }

func (s *Supervisor) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
