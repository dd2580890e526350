package tocsin

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Retention is how long finished broadcasts are kept: a number of months
// or of days. Article 11 asks for at least five months.
type Retention struct {
	Months int
	Days   int
}

// MinRetentionDays is five months at their longest (31+30+31+30+31), so a
// retention given in days never falls short of five calendar months.
const MinRetentionDays = 153

// DefaultRetention keeps records six months.
var DefaultRetention = Retention{Months: 6}

// ParseRetention reads "180d" or "6mo" and refuses anything shorter than
// five months.
func ParseRetention(s string) (Retention, error) {
	s = strings.TrimSpace(s)
	var r Retention
	var n int
	var err error
	switch {
	case strings.HasSuffix(s, "mo"):
		n, err = strconv.Atoi(strings.TrimSuffix(s, "mo"))
		r.Months = n
	case strings.HasSuffix(s, "d"):
		n, err = strconv.Atoi(strings.TrimSuffix(s, "d"))
		r.Days = n
	default:
		return r, fmt.Errorf("retention %q: write days as 180d or months as 6mo", s)
	}
	if err != nil || n <= 0 {
		return r, fmt.Errorf("retention %q: the number must be a positive whole number", s)
	}
	if (r.Months > 0 && r.Months < 5) || (r.Days > 0 && r.Days < MinRetentionDays) {
		return r, fmt.Errorf("retention %s is shorter than the five months Article 11 requires (use at least 5mo or %dd)", s, MinRetentionDays)
	}
	return r, nil
}

func (r Retention) String() string {
	if r.Months > 0 {
		return strconv.Itoa(r.Months) + "mo"
	}
	return strconv.Itoa(r.Days) + "d"
}

// Expired reports whether a record that ended at end may go at now.
func (r Retention) Expired(end, now time.Time) bool {
	keepUntil := end.In(Shanghai).AddDate(0, r.Months, r.Days)
	return !now.Before(keepUntil)
}

// EndedAt is when a finished broadcast finished, and false for one that
// has not.
func (b *Broadcast) EndedAt() (time.Time, bool) {
	switch {
	case !b.Status.Final():
		return time.Time{}, false
	case b.Status == StatusExpired && b.SendUntil != nil:
		return *b.SendUntil, true
	case b.CompletedAt != nil:
		return *b.CompletedAt, true
	case b.Closure != nil:
		return b.Closure.At, true
	case b.Review != nil:
		return b.Review.At, true
	}
	return b.FiledAt, true
}

// Purged describes one broadcast a purge removed (or would remove).
type Purged struct {
	ID      string    `json:"id"`
	Status  Status    `json:"status"`
	EndedAt time.Time `json:"ended_at"`
}

// Purge removes finished broadcasts whose retention has run out, with
// their receipts (the per-provider progress they carry), and records each
// removal in the audit trail. With dryRun it only reports them. Emergencies
// still owing a post-hoc report are kept.
func (s *Service) Purge(ctx context.Context, r Retention, dryRun bool) ([]Purged, error) {
	now := s.now()
	var due []Purged
	err := s.Store.View(ctx, func(tx ReadTx) error {
		cursor := ""
		for {
			page, err := tx.Broadcasts(Query{Limit: MaxPageSize, Cursor: cursor, WithoutHistory: true})
			if err != nil {
				return err
			}
			for _, b := range page.Broadcasts {
				end, ok := b.EndedAt()
				if ok && r.Expired(end, now) && (b.PostHoc == nil || b.PostHoc.Status == PostHocReviewed) {
					due = append(due, Purged{ID: b.ID, Status: b.Status, EndedAt: end})
				}
			}
			if cursor = page.NextCursor; cursor == "" {
				return nil
			}
		}
	})
	if err != nil || dryRun || len(due) == 0 {
		return due, err
	}
	const perTx = 200 // keep each transaction small
	for start := 0; start < len(due); start += perTx {
		batch := due[start:min(start+perTx, len(due))]
		err := s.Store.Update(ctx, func(tx Tx) error {
			for _, p := range batch {
				if err := tx.DeleteBroadcast(p.ID); err != nil {
					return err
				}
				err := tx.Audit(AuditEntry{At: now, Action: AuditPurged, By: "retention", Source: SourceFrom(ctx), Target: p.ID,
					Before: string(p.Status), Note: fmt.Sprintf("ended %s; retention %s", p.EndedAt.Format(time.RFC3339), r)})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return due[:start], err
		}
	}
	return due, nil
}
