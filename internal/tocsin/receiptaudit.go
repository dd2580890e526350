package tocsin

import (
	"fmt"
	"sync"
	"time"
)

// AuditReceiptRefused is the audit action for receipts the coordinator
// refused: for a broadcast never dispatched to that provider, one that
// does not exist, counts or a status no broadcast could take, a message
// too large or not a receipt at all.
const AuditReceiptRefused = "receipt_refused"

// RefusedReceiptAuditEvery bounds the receipt_refused entries: at most
// one per provider in this time, naming the first refusal and counting
// the rest. A provider sending bogus receipts as fast as it can thus
// writes one entry a minute, not one for each.
const RefusedReceiptAuditEvery = time.Minute

// refusal is one provider's refused receipts within one batch.
type refusal struct {
	count  int
	first  string // what the first one was, and why it was refused
	target string // the broadcast it named, when that exists; else the provider
}

// refusalLog remembers, for each provider, when its refused receipts were
// last audited and how many were refused since without an entry. It is
// memory only: a restart may write one entry early, never an unbounded
// number.
type refusalLog struct {
	mu         sync.Mutex
	audited    map[string]time.Time // guarded by mu: provider -> last receipt_refused entry
	suppressed map[string]int       // guarded by mu: provider -> refused since, without an entry
}

// due reports whether provider's refusals get an entry now, and how many
// were refused without one since the last.
func (l *refusalLog) due(provider string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	last, ok := l.audited[provider]
	return !ok || now.Sub(last) >= RefusedReceiptAuditEvery, l.suppressed[provider]
}

// audit writes the receipt_refused entries that are due for this batch's
// refusals. It changes nothing in l: commit does, once the transaction
// has.
func (l *refusalLog) audit(tx Tx, refusals map[string]*refusal, now time.Time) error {
	for provider, r := range refusals {
		due, earlier := l.due(provider, now)
		if !due {
			continue
		}
		note := r.first
		if more := r.count - 1 + earlier; more > 0 {
			note += fmt.Sprintf(" (and %d more refused receipts from %s since the last entry)", more, provider)
		}
		err := tx.Audit(AuditEntry{
			At: now, Action: AuditReceiptRefused, Org: provider, By: "provider:" + provider,
			Target: r.target, Note: note,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// commit records what audit wrote for a transaction that committed.
func (l *refusalLog) commit(refusals map[string]*refusal, now time.Time) {
	if len(refusals) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.audited == nil {
		l.audited, l.suppressed = map[string]time.Time{}, map[string]int{}
	}
	for provider, r := range refusals {
		if last, ok := l.audited[provider]; !ok || now.Sub(last) >= RefusedReceiptAuditEvery {
			l.audited[provider], l.suppressed[provider] = now, 0
		} else {
			l.suppressed[provider] += r.count
		}
	}
}
