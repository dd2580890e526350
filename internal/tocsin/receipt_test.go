package tocsin_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// timeline is the audit trail about target, from the store.
func (e *env) timeline(tb testing.TB, target string) []tocsin.AuditEntry {
	tb.Helper()
	return testkit.Timeline(tb, e.store, target)
}

func countAction(entries []tocsin.AuditEntry, action string) int {
	n := 0
	for _, en := range entries {
		if en.Action == action {
			n++
		}
	}
	return n
}

func TestReceiptCountsAreValidated(t *testing.T) {
	const maxCount = tocsin.MaxReceiptCount
	for _, c := range []struct {
		name                                string
		recipients, sent, delivered, failed int
		field                               string // "" when valid
	}{
		{"zeros", 0, 0, 0, 0, ""},
		{"in progress", 100, 40, 39, 1, ""},
		{"all delivered", 100, 100, 100, 0, ""},
		{"at the maximum", maxCount, maxCount, maxCount - 1, 1, ""},
		{"negative recipients", -1, 0, 0, 0, "recipients"},
		{"negative sent", 10, -1, 0, 0, "sent"},
		{"negative delivered", 10, 5, -1, 0, "delivered"},
		{"negative failed", 10, 5, 0, -1, "failed"},
		{"above the maximum", maxCount + 1, 0, 0, 0, "recipients"},
		{"int64 overflow bait", math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, "recipients"},
		{"delivered more than sent", 100, 10, 11, 0, "counts"},
		{"delivered and failed more than sent", 100, 10, 6, 5, "counts"},
		{"sent more than recipients", 10, 11, 0, 0, "counts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := mustService(t, filedAt)
			b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
			err := e.svc.ApplyReceipt(context.Background(), "cmcc", tocsin.Receipt{BroadcastID: b.ID, Status: string(tocsin.DeliverySending),
				Recipients: c.recipients, Sent: c.sent, Delivered: c.delivered, Failed: c.failed})
			p := e.get(t, b.ID).Providers[0]
			if c.field == "" {
				if err != nil || p.Status != tocsin.DeliverySending || p.Recipients != c.recipients || p.Sent != c.sent {
					t.Fatalf("ApplyReceipt = %v, progress %+v; want it taken", err, p)
				}
				return
			}
			wantCode(t, err, tocsin.CodeValidation)
			if got := tocsin.ErrorDetails(err)["field"]; got != c.field {
				t.Errorf("field = %v, want %s", got, c.field)
			}
			if p.Status != tocsin.DeliveryQueued || p.Recipients != 0 || p.Sent != 0 {
				t.Errorf("a refused receipt changed the progress: %+v", p)
			}
		})
	}
}

// Counts never move back, within a status or into the next; the status
// still moves on.
func TestReceiptCountsNeverMoveBack(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	r := func(status tocsin.DeliveryStatus, sent, delivered, failed int, detail string) tocsin.Receipt {
		return tocsin.Receipt{BroadcastID: b.ID, Status: string(status), Recipients: 1000, Sent: sent, Delivered: delivered, Failed: failed, Detail: detail}
	}
	steps := []struct {
		r                       tocsin.Receipt
		status                  tocsin.DeliveryStatus
		sent, delivered, failed int
	}{
		{r(tocsin.DeliverySending, 500, 490, 10, ""), tocsin.DeliverySending, 500, 490, 10},
		{r(tocsin.DeliverySending, 400, 400, 0, "older"), tocsin.DeliverySending, 500, 490, 10},        // reordered: ignored
		{r(tocsin.DeliverySending, 600, 480, 10, "odd"), tocsin.DeliverySending, 500, 490, 10},         // delivered went back: ignored as a whole
		{r(tocsin.DeliverySending, 700, 680, 20, ""), tocsin.DeliverySending, 700, 680, 20},            // forward again
		{r(tocsin.DeliveryFailed, 0, 0, 0, "gateway lost count"), tocsin.DeliveryFailed, 700, 680, 20}, // status moves, counts stay
	}
	for i, s := range steps {
		e.clock.Add(tocsin.ProgressRecordEvery) // each one recorded
		if err := e.svc.ApplyReceipt(ctx, "cmcc", s.r); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		p := e.get(t, b.ID).Providers[0]
		if p.Status != s.status || p.Sent != s.sent || p.Delivered != s.delivered || p.Failed != s.failed || p.Recipients != 1000 {
			t.Fatalf("step %d: progress %+v, want %s with %d sent, %d delivered, %d failed", i, p, s.status, s.sent, s.delivered, s.failed)
		}
	}
}

// Totals of the largest counts there can be do not overflow.
func TestCompletionTotalsDoNotOverflow(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	const n = tocsin.MaxReceiptCount
	for _, p := range []string{"cmcc", "cucc"} {
		err := e.svc.ApplyReceipt(ctx, p, tocsin.Receipt{BroadcastID: b.ID, Status: string(tocsin.DeliveryDelivered), Recipients: n, Sent: n, Delivered: n - 1, Failed: 1})
		if err != nil {
			t.Fatal(err)
		}
	}
	got := e.get(t, b.ID)
	last := got.History[len(got.History)-1]
	if got.Status != tocsin.StatusCompleted || last.Note != fmt.Sprintf("%d delivered, 2 failed", 2*(n-1)) {
		t.Fatalf("broadcast %s, last event %+v; want completed with %d delivered", got.Status, last, 2*(n-1))
	}
}

// Every change of status is audited, and progress within a status is
// recorded (with its entry, which keeps the record verifiable) at most
// every ProgressRecordEvery: 300 progress receipts in 0.9 s, as the
// review sent them, write no entry each.
func TestReceiptAuditOnStatusChangeNotEachProgress(t *testing.T) {
	// A store of the test's own, so that it can be closed and verified.
	path := filepath.Join(t.TempDir(), "tocsin.db")
	store, err := boltstore.Open(path, region.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e := &env{store: store, clock: testkit.NewClock(filedAt)}
	e.svc = testkit.MustService(t, store, e.clock)
	testkit.MustSeed(t, e.svc, testkit.Directory)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	apply := func(r tocsin.Receipt) {
		t.Helper()
		r.BroadcastID, r.Recipients = b.ID, 1000
		if err := e.svc.ApplyReceipt(ctx, "cmcc", r); err != nil {
			t.Fatal(err)
		}
	}
	apply(tocsin.Receipt{Status: string(tocsin.DeliveryReceived)})
	for i := 1; i <= 300; i++ {
		e.clock.Add(3 * time.Millisecond)
		apply(tocsin.Receipt{Status: string(tocsin.DeliverySending), Sent: i, Delivered: i})
		if i == 150 {
			apply(tocsin.Receipt{Status: string(tocsin.DeliveryReceived)}) // reordered: nothing
		}
	}
	if p := e.get(t, b.ID).Providers[0]; p.Status != tocsin.DeliverySending || p.Sent != 1 {
		t.Fatalf("progress %+v, want sending as first reported (the rest within %s)", p, tocsin.ProgressRecordEvery)
	}
	e.clock.Add(tocsin.ProgressRecordEvery)
	apply(tocsin.Receipt{Status: string(tocsin.DeliverySending), Sent: 301, Delivered: 301})
	if p := e.get(t, b.ID).Providers[0]; p.Sent != 301 || p.Delivered != 301 {
		t.Fatalf("progress %+v, want the latest counts, 301 sent", p)
	}
	e.clock.Add(time.Millisecond) // an outcome is recorded at once
	apply(tocsin.Receipt{Status: string(tocsin.DeliveryDelivered), Sent: 1000, Delivered: 1000})
	apply(tocsin.Receipt{Status: string(tocsin.DeliveryDelivered), Sent: 1000, Delivered: 1000}) // a repeat: nothing

	var receipts []tocsin.AuditEntry
	for _, en := range e.timeline(t, b.ID) {
		if en.Action == tocsin.AuditReceipt {
			receipts = append(receipts, en)
		}
	}
	want := [][2]tocsin.DeliveryStatus{
		{tocsin.DeliveryQueued, tocsin.DeliveryReceived},
		{tocsin.DeliveryReceived, tocsin.DeliverySending},
		{tocsin.DeliverySending, tocsin.DeliverySending}, // the progress 2 s on
		{tocsin.DeliverySending, tocsin.DeliveryDelivered},
	}
	if len(receipts) != len(want) {
		t.Fatalf("%d receipt audit entries for 304 receipts, want %d: %+v", len(receipts), len(want), receipts)
	}
	for i, en := range receipts {
		if en.Before != string(want[i][0]) || en.After != string(want[i][1]) || en.Org != "cmcc" {
			t.Errorf("entry %d = %+v, want %s -> %s", i, en, want[i][0], want[i][1])
		}
	}
	if !strings.Contains(receipts[2].Note, "301 sent") || !strings.Contains(receipts[3].Note, "1000 delivered") {
		t.Errorf("entry notes %q, %q; want the counts", receipts[2].Note, receipts[3].Note)
	}
	// Every write of the record has its entry: the trail verifies.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := boltstore.VerifyAudit(path); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
}

// A receipt for a broadcast not dispatched to the provider is refused and
// audited, and a flood of them writes one entry a minute per provider.
func TestReceiptNotDispatchedIsRefusedAndAuditedBounded(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100")) // Guangdong: cmcc and cucc, not ctcc
	err := e.svc.ApplyReceipt(ctx, "ctcc", tocsin.Receipt{BroadcastID: b.ID, Status: string(tocsin.DeliveryDelivered)})
	wantCode(t, err, tocsin.CodeNotFound)
	entries := e.timeline(t, b.ID)
	if countAction(entries, tocsin.AuditReceiptRefused) != 1 {
		t.Fatalf("timeline %+v, want one receipt_refused entry", entries)
	}
	en := entries[len(entries)-1]
	if en.Action != tocsin.AuditReceiptRefused || en.Org != "ctcc" || !strings.Contains(en.Note, "not dispatched to provider ctcc") {
		t.Errorf("entry = %+v, want ctcc's refusal with the reason", en)
	}
	for _, p := range e.get(t, b.ID).Providers {
		if p.Provider == "ctcc" {
			t.Fatalf("ctcc gained progress: %+v", p)
		}
	}

	// A flood: receipts for broadcasts that do not exist, for one not
	// dispatched, with impossible counts; in batches as the consumer takes
	// them.
	batch := make([]tocsin.ProviderReceipt, 0, 500)
	for i := range 2000 {
		r := tocsin.Receipt{BroadcastID: fmt.Sprintf("BC%09d", i), Status: string(tocsin.DeliveryDelivered)}
		switch i % 3 {
		case 1:
			r.BroadcastID = b.ID
		case 2:
			r.BroadcastID, r.Sent = b.ID, -5
		}
		batch = append(batch, tocsin.ProviderReceipt{Provider: "ctcc", Receipt: r})
		if len(batch) == cap(batch) {
			if _, err := e.svc.ApplyReceipts(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	all := func() int {
		return countAction(e.timeline(t, b.ID), tocsin.AuditReceiptRefused) + countAction(e.timeline(t, "ctcc"), tocsin.AuditReceiptRefused)
	}
	if n := all(); n != 1 {
		t.Fatalf("%d receipt_refused entries after 2,001 refusals within a minute, want 1", n)
	}
	// A minute on, the next refusal is audited and counts those between.
	e.clock.Add(tocsin.RefusedReceiptAuditEvery)
	err = e.svc.ApplyReceipt(ctx, "ctcc", tocsin.Receipt{BroadcastID: "BC000000042", Status: string(tocsin.DeliveryReceived)})
	wantCode(t, err, tocsin.CodeNotFound)
	if n := all(); n != 2 {
		t.Fatalf("%d receipt_refused entries a minute later, want 2", n)
	}
	last := e.timeline(t, "ctcc")
	if en := last[len(last)-1]; !strings.Contains(en.Note, "and 2000 more refused receipts from ctcc") || !strings.Contains(en.Note, "does not exist") {
		t.Errorf("entry note %q, want the count of the refusals not audited alone", en.Note)
	}
	// Another provider's refusals are audited on their own.
	err = e.svc.ApplyReceipt(ctx, "cucc", tocsin.Receipt{BroadcastID: b.ID, Status: "sent"})
	wantCode(t, err, tocsin.CodeValidation)
	if n := countAction(e.timeline(t, "cucc"), tocsin.AuditReceiptRefused); n != 1 {
		t.Errorf("%d receipt_refused entries for cucc, want 1", n)
	}
}
