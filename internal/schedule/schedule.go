// Package schedule releases approved broadcasts at their send time, ends
// those whose send window (send_until) has closed, and flags emergency
// dispatches that providers have not picked up in time. Its
// state is the store's: after a restart it finds the same approved
// broadcasts waiting, and a release is one transaction out of approved, so
// nothing is released twice.
package schedule

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Scheduler runs the release loop.
type Scheduler struct {
	Service *tocsin.Service
	Log     *slog.Logger
	// LateAfter is how long an emergency dispatch may wait for a provider
	// to receive it before it is flagged.
	LateAfter time.Duration
	// OnLate is told how many emergency dispatches are late now.
	OnLate func(n int)
	// OnRelease is told how many broadcasts a round released.
	OnRelease func(n int)
	// OnExpire is told how many broadcasts a round expired.
	OnExpire func(n int)
	// FailingAfter is how long releases or expiries may keep failing
	// before Problems says so; zero means DefaultFailingAfter.
	FailingAfter time.Duration

	mu       sync.Mutex
	failures map[string]*failure // guarded by mu: by kind ("release", "expiry"), while failing
}

// failure is a kind of round that has failed since a time.
type failure struct {
	since, logged time.Time
	err           error
}

// DefaultFailingAfter is how long releases or expiries may keep failing
// before readiness says so: a broadcast due and not released is a silent
// failure otherwise (the loop runs, the outbox is empty).
const DefaultFailingAfter = 5 * time.Second

// logEvery bounds how often a failure that goes on is logged again.
const logEvery = 30 * time.Second

// poll bounds how long the loop sleeps: a broadcast approved for the next
// minute is released within a second of its time without any wake-up call.
const poll = time.Second

// lateCheck is how often late emergency dispatches are looked for.
const lateCheck = 5 * time.Second

// expiryCheck is how often closed send windows are looked for: a scan of
// the open broadcasts, so not every poll, and soon enough that a provider
// is told to stop within seconds of send_until.
const expiryCheck = 2 * time.Second

// Run releases due broadcasts until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	var lastLateCheck, lastExpiryCheck time.Time
	for {
		n, releaseErr := s.Service.ReleaseDue(ctx)
		if ctx.Err() != nil {
			return
		}
		s.noted("release", releaseErr)
		if n > 0 {
			s.Log.Info("released scheduled broadcasts", slog.Int("count", n))
			if s.OnRelease != nil {
				s.OnRelease(n)
			}
		}
		if time.Since(lastExpiryCheck) >= expiryCheck {
			lastExpiryCheck = time.Now()
			n, err := s.Service.ExpireDue(ctx)
			if ctx.Err() != nil {
				return
			}
			s.noted("expiry", err)
			if n > 0 {
				s.Log.Info("send windows closed: broadcasts expired", slog.Int("count", n))
				if s.OnExpire != nil {
					s.OnExpire(n)
				}
			}
		}
		if s.LateAfter > 0 && time.Since(lastLateCheck) >= lateCheck {
			lastLateCheck = time.Now()
			late, err := s.Service.FlagLate(ctx, s.LateAfter)
			if err != nil && ctx.Err() == nil {
				s.Log.Error("late check failed", slog.Any("error", err))
			}
			if late > 0 {
				s.Log.Warn("emergency dispatches late: providers have not received them", slog.Int("count", late), slog.Duration("deadline", s.LateAfter))
			}
			if s.OnLate != nil {
				s.OnLate(late)
			}
		}
		wait := poll
		if next, ok, err := s.Service.NextRelease(ctx); err == nil && ok && releaseErr == nil {
			// Not after a failed round: the next release may be the
			// one that failed, due already, and the loop would spin.
			wait = min(wait, max(0, next.Sub(s.Service.Clock.Now())))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// noted records how a round of kind ended, and logs a failure when it
// starts, every logEvery while it goes on, and when it ends.
func (s *Scheduler) noted(kind string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[kind]
	now := time.Now()
	switch {
	case err == nil && f != nil:
		delete(s.failures, kind)
		s.Log.Info(kind+" succeeds again", slog.Duration("failed for", now.Sub(f.since).Round(time.Millisecond)))
	case err == nil:
	case f == nil:
		if s.failures == nil {
			s.failures = map[string]*failure{}
		}
		s.failures[kind] = &failure{since: now, logged: now, err: err}
		s.Log.Error(kind+" failed; will retry", slog.Any("error", err))
	default:
		f.err = err
		if now.Sub(f.logged) >= logEvery {
			f.logged = now
			s.Log.Error(kind+" still failing; will retry", slog.Any("error", err),
				slog.Duration("failing for", now.Sub(f.since).Round(time.Second)))
		}
	}
}

// Problems says, for readiness, which kinds of round have failed for
// FailingAfter or more, and why.
func (s *Scheduler) Problems() []string {
	after := cmp.Or(s.FailingAfter, DefaultFailingAfter)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, kind := range []string{"release", "expiry"} {
		if f := s.failures[kind]; f != nil && time.Since(f.since) >= after {
			out = append(out, fmt.Sprintf("scheduled %s failing for %s: %v", kind, time.Since(f.since).Round(time.Second), f.err))
		}
	}
	return out
}
