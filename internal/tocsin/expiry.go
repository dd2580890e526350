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
	return s.changeDue(ctx, "expire", func(tx ReadTx) ([]string, error) { return tx.WindowsClosedBy(s.now()) },
		func(tx Tx, b *Broadcast, now time.Time) (bool, error) {
			if !windowClosed(b, now) {
				return false, nil // changed since we looked
			}
			from := b.Status
			stopped := 0
			if from == StatusDispatching {
				var err error
				if stopped, err = s.stopProviders(tx, b, now, "send window closed: stop sent"); err != nil {
					return false, err
				}
			}
			b.Status, b.HeldBy = StatusExpired, ""
			b.record(now, Actor{}, "expired", from,
				fmt.Sprintf("send window closed at %s; stop sent to %d provider(s)", b.SendUntil.Format(time.RFC3339), stopped),
				map[string]any{ParamStopped: stopped})
			return true, nil
		})
}

// WindowCloses is when b's send window closes, for a broadcast that has
// one and could still go out; after it, ExpireDue ends b. The store
// indexes broadcasts by it, so expiry reads only those whose time has
// come rather than every open broadcast.
func (b *Broadcast) WindowCloses() (time.Time, bool) {
	if b.SendUntil == nil {
		return time.Time{}, false
	}
	switch b.Status {
	case StatusPendingReview, StatusApproved, StatusDispatching:
		return *b.SendUntil, true
	}
	return time.Time{}, false
}

// windowClosed reports whether b has a send window that closed at or
// before now while b could still go out.
func windowClosed(b *Broadcast, now time.Time) bool {
	closes, ok := b.WindowCloses()
	return ok && !closes.After(now)
}

// eachBroadcast calls fn with every broadcast q selects, a page at a time,
// without its history.
func eachBroadcast(tx ReadTx, q Query, fn func(*Broadcast)) error {
	q.Limit, q.WithoutHistory = MaxPageSize, true
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
