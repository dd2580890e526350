package natsbus

import (
	"testing"
	"time"
)

func TestReceiptLimiter(t *testing.T) {
	l := newReceiptLimiter(ProviderLimits{ReceiptsPerSecond: 10, ReceiptBurst: 3})
	t0 := time.Unix(1_700_000_000, 0)
	seq := uint64(0)
	take := func(provider string, at time.Duration) (time.Duration, bool) {
		seq++
		return l.take(provider, seq, t0.Add(at))
	}
	for i := range 3 {
		if _, ok := take("cmcc", 0); !ok {
			t.Fatalf("receipt %d of the burst refused", i+1)
		}
	}
	// Over the burst: each waits for a slot of its own, 100 ms apart.
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond} {
		wait, ok := take("cmcc", 0)
		if ok || wait != want {
			t.Fatalf("over-burst receipt %d: wait %s, ok %v; want to wait %s", i+1, wait, ok, want)
		}
	}
	// Another provider has a bucket of its own.
	if _, ok := take("cucc", 0); !ok {
		t.Fatal("cucc held up by cmcc")
	}
	// A receipt sent back passes when its slot comes, not before, and
	// without taking another slot.
	waitingSeq := seq - 1 // cucc's was the last; cmcc's third over-burst one before it
	if _, ok := l.take("cmcc", waitingSeq, t0.Add(100*time.Millisecond)); ok {
		t.Fatal("a receipt passed before its slot")
	}
	if _, ok := l.take("cmcc", waitingSeq, t0.Add(300*time.Millisecond)); !ok {
		t.Fatal("a receipt did not pass at its slot")
	}
	if _, ok := l.slots[waitingSeq]; ok {
		t.Fatal("the slot was kept after use")
	}
	// Slots are given at most maxReceiptWait ahead.
	for range 2000 {
		if wait, ok := take("ctcc", 0); !ok && wait > maxReceiptWait {
			t.Fatalf("waits %s, more than %s", wait, maxReceiptWait)
		}
	}
	// After a quiet spell the bucket is full again, and forget drops what
	// never came back.
	l.forget(t0.Add(10 * time.Minute))
	if len(l.slots) != 0 || len(l.tat) != 0 {
		t.Fatalf("forget kept %d slots and %d providers", len(l.slots), len(l.tat))
	}
	for range 3 {
		if _, ok := take("cmcc", 10*time.Minute); !ok {
			t.Fatal("the bucket did not refill")
		}
	}
}
