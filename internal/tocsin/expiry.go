package tocsin

import (
	"context"
	"fmt"
	"time"
)

// ExpireDue ends every broadcast whose send window (send_until) has closed
// before it finished, and returns how many it ended. Providers still
// sending a dispatching one are sent a stop, so nothing goes out after
// the window the department set; one that never went out (awaiting
// review, or approved and not released, say while the scheduler was down
// or held back by a correction) simply expires. Each is one transaction
// out of its status, so a stop is never queued twice.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	now := s.now()
	var due []string
	err := s.Store.View(ctx, func(tx ReadTx) error {
		due = due[:0] // fn may run more than once
		for _, st := range []Status{StatusPendingReview, StatusApproved, StatusDispatching} {
			err := eachBroadcast(tx, Query{Status: []Status{st}}, func(b *Broadcast) {
				if windowClosed(b, now) {
					due = append(due, b.ID)
				}
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range due {
		expired := false
		_, err := s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
			expired = false // fn may run more than once (Store.Update)
			if !windowClosed(b, now) {
				return nil // changed since we looked
			}
			from := b.Status
			stopped := 0
			if from == StatusDispatching {
				var err error
				if stopped, err = s.stopProviders(tx, b, now, "send window closed: stop sent"); err != nil {
					return err
				}
			}
			b.Status, b.HeldBy = StatusExpired, ""
			b.record(now, Actor{}, "expired", from,
				fmt.Sprintf("send window closed at %s; stop sent to %d provider(s)", b.SendUntil.Format(time.RFC3339), stopped),
				map[string]any{ParamStopped: stopped})
			expired = true
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("expire %s: %w", id, err)
		}
		if expired {
			n++
		}
	}
	return n, nil
}

// windowClosed reports whether b has a send window that closed at or
// before now while b could still go out.
func windowClosed(b *Broadcast, now time.Time) bool {
	if b.SendUntil == nil || b.SendUntil.After(now) {
		return false
	}
	switch b.Status {
	case StatusPendingReview, StatusApproved, StatusDispatching:
		return true
	}
	return false
}

// eachBroadcast calls fn with every broadcast q selects, a page at a time.
func eachBroadcast(tx ReadTx, q Query, fn func(*Broadcast)) error {
	q.Limit = MaxPageSize
	for {
		page, err := tx.Broadcasts(q)
		if err != nil {
			return err
		}
		for _, b := range page.Broadcasts {
			fn(b)
		}
		if q.Cursor = page.NextCursor; q.Cursor == "" {
			return nil
		}
	}
}
