package natsbus

import (
	"time"
)

// maxReceiptWait bounds how far ahead a receipt over its provider's rate
// is scheduled; one further ahead waits this long and is scheduled again.
const maxReceiptWait = time.Minute

// receiptLimiter is the coordinator's rate limit on each provider's
// receipts: a token bucket in its virtual-scheduling form (GCRA). A
// receipt over the rate is given a slot in its provider's future and
// comes back (a NAK with that delay) when the slot is due; it then passes
// without taking another. So the provider's receipts apply at its rate,
// in bursts of at most its burst, and none is dropped. It is used by the
// receipt loop alone.
type receiptLimiter struct {
	interval time.Duration // between two receipts at the sustained rate
	burst    time.Duration // interval × burst: how far the schedule may run ahead
	// tat is, per provider, the theoretical arrival time: when the
	// provider's bucket would be full again.
	tat map[string]time.Time
	// slots are the future slots given to receipts sent back, by stream
	// sequence.
	slots map[uint64]time.Time
}

func newReceiptLimiter(l ProviderLimits) *receiptLimiter {
	if l.ReceiptsPerSecond <= 0 || l.ReceiptBurst <= 0 {
		l = DefaultProviderLimits
	}
	interval := time.Duration(float64(time.Second) / l.ReceiptsPerSecond)
	return &receiptLimiter{
		interval: interval, burst: interval * time.Duration(l.ReceiptBurst),
		tat: map[string]time.Time{}, slots: map[uint64]time.Time{},
	}
}

// take answers whether the receipt at stream sequence seq from provider
// may apply now, and if not, how long it should wait.
func (l *receiptLimiter) take(provider string, seq uint64, now time.Time) (wait time.Duration, ok bool) {
	if slot, had := l.slots[seq]; had {
		if !now.Before(slot.Add(-l.interval)) { // its slot is due
			delete(l.slots, seq)
			return 0, true
		}
		return slot.Sub(now), false // back early (redelivered): keep its slot
	}
	tat := l.tat[provider]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(l.interval)
	if next.Sub(now) <= l.burst {
		l.tat[provider] = next
		return 0, true
	}
	slot := next.Add(-l.burst) // when the bucket has a token for it
	if slot.Sub(now) > maxReceiptWait {
		return maxReceiptWait, false // too far ahead to promise a slot
	}
	l.tat[provider] = next
	l.slots[seq] = slot
	return slot.Sub(now), false
}

// forget drops the slots of receipts that never came back (a newer
// receipt of the same provider pushed them out of the stream).
func (l *receiptLimiter) forget(now time.Time) {
	for seq, slot := range l.slots {
		if now.Sub(slot) > 2*maxReceiptWait {
			delete(l.slots, seq)
		}
	}
	for p, tat := range l.tat {
		if tat.Before(now) {
			delete(l.tat, p)
		}
	}
}

// rate is the sustained rate, per second.
func (l *receiptLimiter) rate() float64 { return float64(time.Second) / float64(l.interval) }
