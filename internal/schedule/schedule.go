// Package schedule releases approved broadcasts at their send time, ends
// those whose send window (send_until) has closed, and flags emergency
// dispatches that providers have not picked up in time. Its
// state is the store's: after a restart it finds the same approved
// broadcasts waiting, and a release is one transaction out of approved, so
// nothing is released twice.
package schedule

import (
	"context"
	"log/slog"
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
}

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
		n, err := s.Service.ReleaseDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.Log.Error("release failed; will retry", slog.Any("error", err))
		}
		if n > 0 {
			s.Log.Info("released scheduled broadcasts", slog.Int("count", n))
			if s.OnRelease != nil {
				s.OnRelease(n)
			}
		}
		if time.Since(lastExpiryCheck) >= expiryCheck {
			lastExpiryCheck = time.Now()
			n, err := s.Service.ExpireDue(ctx)
			if err != nil && ctx.Err() == nil {
				s.Log.Error("expiry failed; will retry", slog.Any("error", err))
			}
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
		if next, ok, err := s.Service.NextRelease(ctx); err == nil && ok {
			wait = min(wait, max(0, next.Sub(s.Service.Clock.Now())))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
