package tocsin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/provider/wire"
)

// Receipt is what a provider reports about one broadcast.
type Receipt = wire.Receipt

// MaxDetailChars bounds a receipt's detail text.
const MaxDetailChars = 1000

// ProviderReceipt is a receipt and the provider it came from, as the
// receipts stream delivers them.
type ProviderReceipt struct {
	Provider string
	Receipt  Receipt
}

// Applied is what one receipt did: the error that refused it, and the
// provider's first receipt for the broadcast (how long after the dispatch
// was queued) for the published-to-received figure.
type Applied struct {
	Err error
	// FirstAfter is, on a provider's first receipt for a broadcast, the
	// time since its dispatch was queued; zero otherwise.
	FirstAfter time.Duration
}

// ApplyReceipt records a provider's receipt. A receipt never moves a
// provider backwards (redelivered or reordered receipts are harmless), and
// the broadcast completes when every provider has finished.
func (s *Service) ApplyReceipt(ctx context.Context, provider string, r Receipt) error {
	applied, err := s.ApplyReceipts(ctx, []ProviderReceipt{{Provider: provider, Receipt: r}})
	if err != nil {
		return err
	}
	return applied[0].Err
}

// ApplyReceipts records receipts in order, all in one transaction: at
// hundreds of receipts a second one fsync each would fall behind and flag
// emergencies late that were not. A receipt the rules refuse is answered
// in its Applied and changes nothing; the others still apply. The error
// is the transaction's: when it is set, nothing was recorded.
func (s *Service) ApplyReceipts(ctx context.Context, receipts []ProviderReceipt) ([]Applied, error) {
	applied := make([]Applied, len(receipts))
	for i := range receipts {
		applied[i].Err = checkReceipt(&receipts[i].Receipt)
	}
	err := s.Store.Update(ctx, func(tx Tx) error {
		now := s.now()
		changed := map[string]*Broadcast{} // read once, written once
		events := map[string]int{}         // history length as read
		var order []string
		var audits []AuditEntry // after the writes, so each carries its record's hash
		for i, pr := range receipts {
			applied[i].FirstAfter = 0
			if checkReceipt(&pr.Receipt) != nil {
				continue
			}
			b := changed[pr.Receipt.BroadcastID]
			if b == nil {
				var err error
				if b, err = tx.Broadcast(pr.Receipt.BroadcastID); IsCode(err, CodeNotFound) {
					applied[i].Err = err
					continue
				} else if err != nil {
					return err
				}
				changed[b.ID], events[b.ID] = b, len(b.History)
				order = append(order, b.ID)
			}
			first, audit, err := applyReceipt(tx, b, pr.Provider, pr.Receipt, now)
			applied[i].Err = err
			if IsCode(err, CodeNotFound) {
				continue
			} else if err != nil {
				return err
			}
			applied[i].FirstAfter = first
			if audit != nil {
				audits = append(audits, *audit)
			}
		}
		for _, id := range order {
			if err := tx.PutBroadcast(changed[id]); err != nil {
				return err
			}
		}
		for _, e := range audits {
			if err := tx.Audit(e); err != nil {
				return err
			}
		}
		for _, id := range order {
			if err := auditHistory(ctx, tx, changed[id], events[id]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// checkReceipt refuses a receipt no broadcast could take, and tidies its
// detail.
func checkReceipt(r *Receipt) error {
	switch DeliveryStatus(r.Status) {
	case DeliveryReceived, DeliverySending, DeliveryDelivered, DeliveryFailed:
	default:
		return invalid("status", "receipt status %q is not one of received, sending, delivered, failed", r.Status)
	}
	if r.Recipients < 0 || r.Sent < 0 || r.Delivered < 0 || r.Failed < 0 {
		return invalid("counts", "receipt counts may not be negative")
	}
	r.Detail = truncate(strings.TrimSpace(r.Detail), MaxDetailChars)
	return nil
}

// applyReceipt moves provider's progress on b as r reports, and returns
// the audit entry to write once b is.
func applyReceipt(tx Tx, b *Broadcast, provider string, r Receipt, now time.Time) (firstAfter time.Duration, audit *AuditEntry, err error) {
	p := b.progress(provider)
	if p == nil {
		return 0, nil, Errorf(CodeNotFound, "broadcast %s was not dispatched to provider %s", b.ID, provider)
	}
	if err := touchProvider(tx, provider, now); err != nil {
		return 0, nil, err
	}
	status := DeliveryStatus(r.Status)
	if p.Status == DeliveryQueued {
		firstAfter = max(now.Sub(p.QueuedAt), time.Nanosecond)
	}
	switch {
	case p.Status == DeliveryStopped:
		// Keep the stop, but record what went out before it took hold.
	case p.Status.Final() || rank(status) < rank(p.Status):
		return 0, nil, nil // stale or reordered: we already know the outcome
	default:
		p.Status = status
	}
	p.Recipients, p.Sent, p.Delivered, p.Failed = r.Recipients, r.Sent, r.Delivered, r.Failed
	p.Detail, p.UpdatedAt, p.Late = r.Detail, now, false
	b.completeIfDone(now)
	return firstAfter, &AuditEntry{
		At: now, Action: AuditReceipt, Org: provider, By: "provider:" + provider, Target: b.ID,
		After: string(p.Status),
		Note:  fmt.Sprintf("%s: %d recipients, %d sent, %d delivered, %d failed", r.Status, r.Recipients, r.Sent, r.Delivered, r.Failed),
	}, nil
}

// rank orders delivery states so progress only moves forward.
func rank(s DeliveryStatus) int {
	switch s {
	case DeliveryQueued:
		return 0
	case DeliveryReceived:
		return 1
	case DeliverySending:
		return 2
	default:
		return 3 // delivered, failed, stopped
	}
}

func touchProvider(tx Tx, id string, now time.Time) error {
	p, err := tx.Provider(id)
	if IsCode(err, CodeNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if p.LastSeen != nil && now.Sub(*p.LastSeen) < time.Second {
		return nil
	}
	p.LastSeen = &now
	return tx.PutProvider(p)
}

func (b *Broadcast) progress(provider string) *ProviderProgress {
	for i := range b.Providers {
		if b.Providers[i].Provider == provider {
			return &b.Providers[i]
		}
	}
	return nil
}

// completeIfDone moves a dispatching broadcast to completed once every
// provider has finished with it.
func (b *Broadcast) completeIfDone(now time.Time) {
	if b.Status != StatusDispatching {
		return
	}
	delivered, failed := 0, 0
	for _, p := range b.Providers {
		if !p.Status.Final() {
			return
		}
		delivered += p.Delivered
		failed += p.Failed
	}
	b.Status = StatusCompleted
	b.CompletedAt = &now
	b.record(now, Actor{}, "completed", StatusDispatching, fmt.Sprintf("%d delivered, %d failed", delivered, failed),
		map[string]any{ParamDelivered: delivered, ParamFailed: failed})
}

// MarkUndeliverable records that a provider never acknowledged a dispatch
// (a dead letter), so the failure is visible and can be re-sent.
func (s *Service) MarkUndeliverable(ctx context.Context, provider, broadcastID, reason string) error {
	_, err := s.change(ctx, broadcastID, func(tx Tx, b *Broadcast, now time.Time) error {
		p := b.progress(provider)
		if p == nil || p.Status.Final() {
			return nil
		}
		p.Status, p.Detail, p.UpdatedAt = DeliveryFailed, truncate(reason, MaxDetailChars), now
		b.record(now, Actor{}, "dispatch_failed", b.Status, provider+": "+reason,
			map[string]any{ParamProvider: provider, ParamReason: reason})
		b.completeIfDone(now)
		return nil
	})
	return err
}

// Resend queues one provider's dispatch again, for a provider that failed
// or went silent. The new message has its own id, so the broker does not
// drop it as a duplicate; the provider drops it if it already had it.
func (s *Service) Resend(ctx context.Context, a Actor, id, provider string) (*Broadcast, error) {
	return s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
		if err := s.supervise(a, b); err != nil {
			return err
		}
		if b.Status != StatusDispatching && b.Status != StatusCompleted {
			return conflict(b, "re-sent", StatusDispatching, StatusCompleted)
		}
		p := b.progress(provider)
		if p == nil {
			return Errorf(CodeNotFound, "broadcast %s was not dispatched to provider %s", b.ID, provider).With("field", "provider")
		}
		p.Attempts++
		d := s.dispatchFor(b, p.Regions, b.dispatchType())
		mid := fmt.Sprintf("%s.%d", msgID(b.ID, d.Type, provider), p.Attempts+1)
		id, err := enqueue(tx, now, provider, mid, d)
		if err != nil {
			return err
		}
		p.Status, p.Detail, p.QueuedAt, p.UpdatedAt, p.Late, p.MsgID = DeliveryQueued, "re-sent", now, now, false, id
		if b.Status == StatusCompleted {
			b.Status, b.CompletedAt = StatusDispatching, nil
		}
		b.record(now, a, "resent", b.Status, provider, map[string]any{ParamProvider: provider})
		return nil
	})
}

// FlagLate marks emergency dispatches that a provider has not received
// within deadline of being queued, and returns how many are late now.
func (s *Service) FlagLate(ctx context.Context, deadline time.Duration) (int, error) {
	emergency := true
	var ids []string
	late := 0
	now := s.now()
	err := s.Store.View(ctx, func(tx ReadTx) error {
		cursor := ""
		for {
			page, err := tx.Broadcasts(Query{Status: []Status{StatusDispatching}, Emergency: &emergency, Limit: MaxPageSize, Cursor: cursor})
			if err != nil {
				return err
			}
			for _, b := range page.Broadcasts {
				flag := false
				for _, p := range b.Providers {
					if p.Status == DeliveryQueued && now.Sub(p.QueuedAt) > deadline {
						late++ // count every late provider, flagged before or not
						flag = flag || !p.Late
					}
				}
				if flag {
					ids = append(ids, b.ID)
				}
			}
			if cursor = page.NextCursor; cursor == "" {
				return nil
			}
		}
	})
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		_, err := s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
			for i := range b.Providers {
				p := &b.Providers[i]
				if p.Status == DeliveryQueued && now.Sub(p.QueuedAt) > deadline && !p.Late {
					p.Late = true
					b.record(now, Actor{}, "late", b.Status, fmt.Sprintf("%s has not received it within %s", p.Provider, deadline),
						map[string]any{ParamProvider: p.Provider, ParamWithin: deadline.String()})
				}
			}
			return nil
		})
		if err != nil {
			return late, err
		}
	}
	return late, nil
}

// QueuedBefore returns, by provider, the dispatching broadcasts whose
// dispatch to that provider was queued before t and never received.
func (s *Service) QueuedBefore(ctx context.Context, t time.Time) (map[string][]string, error) {
	out := map[string][]string{}
	err := s.Store.View(ctx, func(tx ReadTx) error {
		cursor := ""
		for {
			page, err := tx.Broadcasts(Query{Status: []Status{StatusDispatching}, Limit: MaxPageSize, Cursor: cursor})
			if err != nil {
				return err
			}
			for _, b := range page.Broadcasts {
				for _, p := range b.Providers {
					if p.Status == DeliveryQueued && p.QueuedAt.Before(t) {
						out[p.Provider] = append(out[p.Provider], b.ID)
					}
				}
			}
			if cursor = page.NextCursor; cursor == "" {
				return nil
			}
		}
	})
	return out, err
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
