package tocsin

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/provider/wire"
)

// Receipt is what a provider reports about one broadcast.
type Receipt = wire.Receipt

// Bounds on what a receipt may say. A receipt is a few hundred bytes of
// JSON; MaxReceiptBytes leaves room for a long detail in Chinese and is
// what the coordinator takes (the stream's own limit adds the headers).
// No public-welfare broadcast reaches more phones than China has, so a
// count above MaxReceiptCount is a provider's bug or an attack; bounding
// each count also keeps every sum of them far from overflowing.
const (
	MaxDetailChars  = 1000
	MaxReceiptBytes = 4 << 10
	MaxReceiptCount = 2_000_000_000
)

// ProgressRecordEvery is how often a provider's progress within one status
// (a stream of "sending" receipts with growing counts) is written to the
// broadcast: the receipts between are superseded by the next, and are
// acknowledged without a write. Each write of a broadcast has its audit
// entry, whose hash of the record is what makes the record's tampering
// evident (tocsin audit verify), so this is also what bounds the entries:
// every change of status, and a progress entry at most this often per
// provider, however many receipts it sends.
const ProgressRecordEvery = 2 * time.Second

// ProviderReceipt is a receipt and the provider it came from, as the
// receipts stream delivers them.
type ProviderReceipt struct {
	Provider string
	Receipt  Receipt
	// Refused, when set by the adapter, is why the message could not be
	// read as a receipt at all (too large, not JSON): it is refused and
	// audited like any other refusal.
	Refused error
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
//
// Applying a receipt twice is the same as applying it once: status and
// counts only move forward. That is what lets the receipts stream keep
// no meaningful duplicate window (a provider's message ids are its own
// to choose, and a window shared by all providers let one drop another's
// receipts by sending its ids first).
//
// Every change of a provider's status goes into the audit trail; progress
// within a status, at most every ProgressRecordEvery. A refused receipt
// is audited as receipt_refused, at most once per provider every
// RefusedReceiptAuditEvery, the entry counting the others.
func (s *Service) ApplyReceipts(ctx context.Context, receipts []ProviderReceipt) ([]Applied, error) {
	applied := make([]Applied, len(receipts))
	for i := range receipts {
		applied[i].Err = checkReceipt(&receipts[i])
	}
	var refusals map[string]*refusal
	var at time.Time // the transaction's clock, for the refusal log
	err := s.Store.Update(ctx, func(tx Tx) error {
		now := s.now()
		at = now
		changed := map[string]*Broadcast{} // read once, written once
		events := map[string]int{}         // history length as read
		var order []string
		var audits []AuditEntry // after the writes, so each carries its record's hash
		refusals = map[string]*refusal{}
		refuse := func(pr ProviderReceipt, err error, target string) {
			r := refusals[pr.Provider]
			if r == nil {
				r = &refusal{}
				refusals[pr.Provider] = r
			}
			r.count++
			if r.count == 1 {
				r.first = fmt.Sprintf("receipt for %q refused: %s", truncate(pr.Receipt.BroadcastID, 64), ErrorMessage(err))
				r.target = target
			}
		}
		for i, pr := range receipts {
			applied[i].FirstAfter = 0
			if err := checkReceipt(&pr); err != nil {
				refuse(pr, err, pr.Provider)
				continue
			}
			b := changed[pr.Receipt.BroadcastID]
			if b == nil {
				var err error
				if b, err = tx.Broadcast(pr.Receipt.BroadcastID); IsCode(err, CodeNotFound) {
					applied[i].Err = Errorf(CodeNotFound, "broadcast %q does not exist", truncate(pr.Receipt.BroadcastID, 64))
					refuse(pr, applied[i].Err, pr.Provider)
					continue
				} else if err != nil {
					return err
				}
				// The receipt may spell the id otherwise than the record
				// does (BC1 for BC000001): one already changed in this
				// transaction is the one to change further, or the
				// first receipt's change is lost when this one is put.
				if seen := changed[b.ID]; seen != nil {
					b = seen
				} else {
					changed[b.ID], events[b.ID] = b, len(b.History)
					order = append(order, b.ID)
				}
			}
			first, audit, err := applyReceipt(tx, b, pr.Provider, pr.Receipt, now)
			applied[i].Err = err
			if IsCode(err, CodeNotFound) {
				refuse(pr, err, b.ID)
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
		return s.refusals.audit(tx, refusals, now)
	})
	if err != nil {
		return nil, err
	}
	s.refusals.commit(refusals, at)
	return applied, nil
}

// checkReceipt refuses a receipt no broadcast could take, and tidies its
// detail.
func checkReceipt(pr *ProviderReceipt) error {
	if pr.Refused != nil {
		return pr.Refused
	}
	r := &pr.Receipt
	switch DeliveryStatus(r.Status) {
	case DeliveryReceived, DeliverySending, DeliveryDelivered, DeliveryFailed:
	default:
		return invalid("status", "receipt status %q is not one of received, sending, delivered, failed", truncate(r.Status, 32))
	}
	for _, c := range []struct {
		name string
		n    int
	}{{"recipients", r.Recipients}, {"sent", r.Sent}, {"delivered", r.Delivered}, {"failed", r.Failed}} {
		if c.n < 0 || c.n > MaxReceiptCount {
			return invalid(c.name, "receipt count %s is %d; counts are from 0 to %d", c.name, c.n, MaxReceiptCount)
		}
	}
	// Each count is at most 2e9, so the sum cannot overflow.
	if r.Delivered+r.Failed > r.Sent {
		return invalid("counts", "receipt counts %d delivered + %d failed exceed the %d sent", r.Delivered, r.Failed, r.Sent)
	}
	if r.Sent > r.Recipients {
		return invalid("counts", "receipt counts %d sent exceed the %d recipients", r.Sent, r.Recipients)
	}
	r.Detail = truncate(strings.TrimSpace(r.Detail), MaxDetailChars)
	return nil
}

// applyReceipt moves provider's progress on b as r reports, and returns
// the audit entry to write once b is. Every change of status is recorded
// and audited; progress within a status at most every
// ProgressRecordEvery.
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
	before := p.Status
	switch {
	case p.Status == DeliveryStopped:
		// Keep the stop, but record what went out before it took hold.
	case p.Status.Final() || rank(status) < rank(p.Status):
		return 0, nil, nil // stale or reordered: we already know the outcome
	default:
		p.Status = status
	}
	if p.Status == before && !status.Final() && now.Sub(p.UpdatedAt) < ProgressRecordEvery {
		// Progress within a status, recorded a moment ago: the provider's
		// next receipt carries newer counts (and its last, a final one,
		// always applies).
		return 0, nil, nil
	}
	// Counts never move back: a receipt behind the recorded ones (older,
	// reordered, or a provider that lost count) leaves them as they are,
	// though its status may still move the provider on. Counts are taken
	// as a whole from one receipt, so they stay consistent. The detail
	// comes with the counts, a new status, or a provider's last word (a
	// final receipt: one that says why it stopped may trail a progress
	// report it thought had failed to publish).
	forward := r.Sent >= p.Sent && r.Delivered >= p.Delivered && r.Failed >= p.Failed
	if forward {
		p.Recipients, p.Sent, p.Delivered, p.Failed = r.Recipients, r.Sent, r.Delivered, r.Failed
	}
	switch {
	case p.Status != before:
		p.Detail = r.Detail
	case r.Detail != "" && (forward || status.Final()):
		p.Detail = r.Detail
	}
	p.UpdatedAt, p.Late = now, false
	b.completeIfDone(now)
	return firstAfter, &AuditEntry{
		At: now, Action: AuditReceipt, Org: provider, By: "provider:" + provider, Target: b.ID,
		Before: string(before), After: string(p.Status),
		Note: fmt.Sprintf("%s: %d recipients, %d sent, %d delivered, %d failed", r.Status, p.Recipients, p.Sent, p.Delivered, p.Failed),
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
	var delivered, failed int64
	for _, p := range b.Providers {
		if !p.Status.Final() {
			return
		}
		delivered = addCount(delivered, p.Delivered)
		failed = addCount(failed, p.Failed)
	}
	b.Status = StatusCompleted
	b.CompletedAt = &now
	b.record(now, Actor{}, "completed", StatusDispatching, fmt.Sprintf("%d delivered, %d failed", delivered, failed),
		map[string]any{ParamDelivered: delivered, ParamFailed: failed})
}

// addCount adds a provider's count to a total. Counts are bounded by
// MaxReceiptCount now, but records written before that was checked may
// hold anything: a total saturates rather than wraps negative.
func addCount(total int64, n int) int64 {
	n64 := min(max(int64(n), 0), MaxReceiptCount)
	if total > math.MaxInt64-n64 {
		return math.MaxInt64
	}
	return total + n64
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

// Awaited is one provider's dispatch of a dispatching broadcast that the
// provider has not received yet: what the late check and the dead-letter
// check (QueuedBefore) look for.
type Awaited struct {
	BroadcastID, Provider string
	QueuedAt              time.Time
	Emergency, Late       bool
}

// Awaited lists b's dispatches still queued for their providers while b
// is dispatching. The store indexes broadcasts by them, so FlagLate and
// QueuedBefore read only the dispatches queued long enough ago, not every
// broadcast still dispatching (all of them, on a day a provider is down).
func (b *Broadcast) Awaited() []Awaited {
	if b.Status != StatusDispatching {
		return nil
	}
	var out []Awaited
	for _, p := range b.Providers {
		if p.Status == DeliveryQueued {
			out = append(out, Awaited{BroadcastID: b.ID, Provider: p.Provider, QueuedAt: p.QueuedAt, Emergency: b.IsEmergency(), Late: p.Late})
		}
	}
	return out
}

// FlagLate marks emergency dispatches that a provider has not received
// within deadline of being queued, and returns how many are late now.
func (s *Service) FlagLate(ctx context.Context, deadline time.Duration) (int, error) {
	var ids []string
	late := 0
	now := s.now()
	err := s.Store.View(ctx, func(tx ReadTx) error {
		awaited, err := tx.AwaitedBefore(now.Add(-deadline))
		if err != nil {
			return err
		}
		flag := map[string]bool{}
		for _, a := range awaited {
			if !a.Emergency {
				continue
			}
			late++ // count every late provider, flagged before or not
			if !a.Late && !flag[a.BroadcastID] {
				flag[a.BroadcastID] = true
				ids = append(ids, a.BroadcastID)
			}
		}
		return nil
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
		if err != nil && !IsCode(err, CodeNotFound) { // purged since it was read: nothing to flag
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
		awaited, err := tx.AwaitedBefore(t)
		if err != nil {
			return err
		}
		// What comes of this is a dispatch marked failed, so each is read
		// back from its record: the index is the store's, and a store last
		// written by a version without it (a downgrade, which is not
		// supported, and back) would hold stale entries.
		for _, a := range awaited {
			b, err := tx.Broadcast(a.BroadcastID)
			if IsCode(err, CodeNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if p := b.progress(a.Provider); b.Status == StatusDispatching && p != nil && p.Status == DeliveryQueued && p.QueuedAt.Before(t) {
				out[a.Provider] = append(out[a.Provider], a.BroadcastID)
			}
		}
		return nil
	})
	return out, err
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
