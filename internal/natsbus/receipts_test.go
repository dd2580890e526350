package natsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// audit is the audit trail about target, from the store.
func (c *coordinator) audit(t *testing.T, target string) []tocsin.AuditEntry {
	t.Helper()
	return testkit.Timeline(t, c.store, target)
}

func countEntries(entries []tocsin.AuditEntry, action, org string) int {
	n := 0
	for _, e := range entries {
		if e.Action == action && (org == "" || e.Org == org) {
			n++
		}
	}
	return n
}

// The review's attack: the reference provider's receipt ids were
// predictable and TOCSIN_RECEIPTS deduplicated them across providers, so
// cmcc, publishing its own receipts under cucc's future ids, made the
// stream drop cucc's, and cucc's progress stayed where it was for ever.
func TestReceiptIDsCannotCrossProviders(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, cmcc, cucc)
	c.startDispatcher(t)

	info, err := c.bus.JetStream().Stream(testContext(t), natsbus.ReceiptStream)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := info.CachedInfo().Config; cfg.Duplicates != natsbus.ReceiptDedupWindow || cfg.MaxMsgSize <= 0 ||
		cfg.MaxMsgsPerSubject != natsbus.DefaultProviderLimits.ReceiptBacklog {
		t.Fatalf("receipt stream: duplicates %s, max msg size %d, per subject %d; want the receipt limits",
			cfg.Duplicates, cfg.MaxMsgSize, cfg.MaxMsgsPerSubject)
	}
	if cons := streamConsumerInfo(t, c.bus.JetStream(), natsbus.ReceiptStream, natsbus.ReceiptConsumer); cons.Config.MaxAckPending != -1 {
		t.Errorf("receipt consumer max ack pending %d, want unlimited (-1)", cons.Config.MaxAckPending)
	}

	b := c.fileEmergency(t, "440100") // Guangdong: cmcc and cucc
	cm, cu := providerJS(t, c, "cmcc"), providerJS(t, c, "cucc")
	if err := fetchOne(t, cm, "cmcc").DoubleAck(testContext(t)); err != nil {
		t.Fatal(err)
	}
	m := fetchOne(t, cu, "cucc")
	meta, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DoubleAck(testContext(t)); err != nil {
		t.Fatal(err)
	}
	// The ids the reference provider used to send: provider, broadcast,
	// dispatch sequence, status and counts, all of which cmcc can guess.
	id := func(status string, n int) string {
		return fmt.Sprintf("cucc.%s.%d.%s.%d.%d.0", b.ID, meta.Sequence.Stream, status, n, n)
	}
	receipt := func(status string, n int) map[string]any {
		return map[string]any{"broadcast_id": b.ID, "status": status, "recipients": 100, "sent": n, "delivered": n, "failed": 0}
	}
	publishReceipt(t, cm, "cmcc", receipt("received", 0), id("received", 0))
	publishReceipt(t, cm, "cmcc", receipt("delivered", 100), id("delivered", 100))
	c.waitBroadcast(t, b.ID, "cmcc's receipts", func(b *tocsin.Broadcast) bool { return hasProgress(b, "cmcc", tocsin.DeliveryDelivered) })

	// cucc's real receipts, later, under the same ids. The stream keeps no
	// duplicate window beyond the smallest nats-server allows: await its
	// end by a probe sent after the forgeries, a repeat of cmcc's last
	// receipt (harmless), until the stream takes it as new.
	probe := func() bool {
		data, _ := json.Marshal(receipt("delivered", 100))
		ack, err := cm.Publish(testContext(t), natsbus.ReceiptSubject("cmcc"), data, jetstream.WithMsgID("probe"))
		if err != nil {
			t.Fatal(err)
		}
		return !ack.Duplicate
	}
	probe()
	waitFor(t, "the duplicate window to pass", func() (bool, error) { return probe(), nil })
	publishReceipt(t, cu, "cucc", receipt("received", 0), id("received", 0))       // fails on a duplicate PubAck
	publishReceipt(t, cu, "cucc", receipt("delivered", 100), id("delivered", 100)) // likewise
	got := c.waitBroadcast(t, b.ID, "cucc's receipts to apply", func(b *tocsin.Broadcast) bool { return b.Status == tocsin.StatusCompleted })
	if p := progress(t, got, "cucc"); p.Status != tocsin.DeliveryDelivered || p.Delivered != 100 {
		t.Errorf("cucc = %+v, want delivered 100", p)
	}

	// And a provider's own repeat of a receipt is harmless: applying it
	// twice is applying it once.
	publishReceipt(t, cu, "cucc", receipt("delivered", 100), "a-retry-after-the-window")
	waitFor(t, "the repeat to be applied", func() (bool, error) {
		i := streamConsumerInfo(t, c.bus.JetStream(), natsbus.ReceiptStream, natsbus.ReceiptConsumer)
		return i.NumPending == 0 && i.NumAckPending == 0 && i.AckFloor.Stream == i.Delivered.Stream && i.Delivered.Stream >= 6, nil
	})
	if n := countEntries(c.audit(t, b.ID), tocsin.AuditReceipt, "cucc"); n != 2 {
		t.Errorf("%d receipt entries for cucc, want 2 (received, delivered)", n)
	}
}

// A receipt for a broadcast never dispatched to the provider is refused
// and audited; so is one too large to be a receipt, and a bigger message
// still is refused by NATS itself.
func TestReceiptsOnlyForOwnDispatchesAndSmall(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, cmcc, ctcc)
	c.startDispatcher(t)
	b := c.fileEmergency(t, "440100") // Guangdong: cmcc, not ctcc (Guangxi)
	ct := providerJS(t, c, "ctcc")
	publishReceipt(t, ct, "ctcc", map[string]any{"broadcast_id": b.ID, "status": "delivered", "recipients": 1, "sent": 1, "delivered": 1}, "ct-1")
	waitFor(t, "ctcc's receipt to be refused and audited", func() (bool, error) {
		return countEntries(c.audit(t, b.ID), tocsin.AuditReceiptRefused, "ctcc") == 1, nil
	})
	got, err := c.svc.Get(testContext(t), admin, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got.Providers {
		if p.Provider == "ctcc" {
			t.Fatalf("ctcc gained progress on a broadcast not dispatched to it: %+v", p)
		}
	}

	// Within the account's max payload but over the receipt size: stored,
	// and refused by the coordinator.
	big := map[string]any{"broadcast_id": b.ID, "status": "sending", "recipients": 1, "detail": strings.Repeat("x", tocsin.MaxReceiptBytes)}
	cm := providerJS(t, c, "cmcc")
	publishReceipt(t, cm, "cmcc", big, "cm-big")
	waitFor(t, "the large receipt to be refused and audited", func() (bool, error) {
		return countEntries(c.audit(t, "cmcc"), tocsin.AuditReceiptRefused, "cmcc") == 1, nil
	})
	if p := progress(t, c.waitBroadcast(t, b.ID, "", func(*tocsin.Broadcast) bool { return true }), "cmcc"); p.Status != tocsin.DeliveryQueued {
		t.Errorf("the large receipt moved cmcc: %+v", p)
	}

	// Over the account's max payload: NATS refuses it.
	huge := make([]byte, natsbus.DefaultProviderLimits.MaxPayload+1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// (The server tells the client its account's limit: the client
	// refuses before sending, as it would for the server's own.)
	if _, err := cm.Publish(ctx, natsbus.ReceiptSubject("cmcc"), huge); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("a %d-byte receipt: %v, want the account's max payload (%d) refusing it", len(huge), err, natsbus.DefaultProviderLimits.MaxPayload)
	}
}

// A provider publishing 10,000 receipts as fast as it can: its storage in
// the stream stays within its backlog, its receipts apply no faster than
// its rate, another provider's receipts go through at once, and the
// coordinator's store sees a few transactions and audit entries, not
// 10,000.
func TestReceiptFloodIsBounded(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, cmcc, cucc)
	limits := natsbus.DefaultProviderLimits
	limits.ReceiptBacklog, limits.ReceiptsPerSecond, limits.ReceiptBurst = 1000, 100, 200
	c.bus.Limits = limits
	store := &testkit.CountingStore{Store: c.svc.Store}
	c.svc.Store = store
	var mu sync.Mutex
	applied := map[string]int{}
	c.startDispatcher(t, func(d *natsbus.Dispatcher) {
		d.Hooks.Receipt = func(provider string, _ tocsin.DeliveryStatus) {
			mu.Lock()
			applied[provider]++
			mu.Unlock()
		}
	})
	b := c.fileEmergency(t, "440100")
	cu := providerJS(t, c, "cucc")
	cm, err := jetstream.New(c.connect(t, "cmcc"), jetstream.WithPublishAsyncMaxPending(512))
	if err != nil {
		t.Fatal(err)
	}
	for id, js := range map[string]jetstream.JetStream{"cmcc": cm, "cucc": cu} {
		if err := fetchOne(t, js, id).DoubleAck(testContext(t)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the receipt stream to take the test's limits", func() (bool, error) {
		s, err := c.bus.JetStream().Stream(testContext(t), natsbus.ReceiptStream)
		return err == nil && s.CachedInfo().Config.MaxMsgsPerSubject == limits.ReceiptBacklog, err
	})

	const flood = 10_000
	before := store.Updates()
	auditBefore := len(c.audit(t, b.ID))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	floodDone := make(chan error, 1)
	go func() {
		for i := 1; i <= flood; i++ {
			data, _ := json.Marshal(map[string]any{"broadcast_id": b.ID, "status": "sending", "recipients": flood, "sent": i, "delivered": i})
			if _, err := cm.PublishAsync(natsbus.ReceiptSubject("cmcc"), data, jetstream.WithStallWait(30*time.Second)); err != nil {
				floodDone <- err
				return
			}
		}
		select {
		case <-cm.PublishAsyncComplete():
			floodDone <- nil
		case <-ctx.Done():
			floodDone <- ctx.Err()
		}
	}()

	// Meanwhile cucc's receipts are not held up behind cmcc's.
	time.Sleep(50 * time.Millisecond) // let the flood get going: nothing to await
	sentAt := time.Now()
	publishReceipt(t, cu, "cucc", map[string]any{"broadcast_id": b.ID, "status": "delivered", "recipients": 10, "sent": 10, "delivered": 10}, "cu-1")
	c.waitBroadcast(t, b.ID, "cucc's receipt during the flood", func(b *tocsin.Broadcast) bool { return hasProgress(b, "cucc", tocsin.DeliveryDelivered) })
	cuccLag := time.Since(sentAt)

	if err := <-floodDone; err != nil {
		t.Fatalf("flood: %v", err)
	}
	took := time.Since(start)
	s, err := c.bus.JetStream().Stream(testContext(t), natsbus.ReceiptStream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.Info(testContext(t), jetstream.WithSubjectFilter(natsbus.ReceiptSubject("cmcc")))
	if err != nil {
		t.Fatal(err)
	}
	kept := si.State.Subjects[natsbus.ReceiptSubject("cmcc")]
	mu.Lock()
	cmccApplied := applied["cmcc"]
	mu.Unlock()
	elapsed := time.Since(start)
	updates := store.Updates() - before
	entries := 0 // the providers' (the relay's dispatch_published may land late)
	for _, e := range c.audit(t, b.ID)[auditBefore:] {
		if strings.HasPrefix(e.By, "provider:") {
			entries++
		}
	}
	t.Logf("flood of %d receipts published in %s: stream keeps %d of cmcc's (%d bytes in the stream); %d applied in %s; %d store transactions, %d audit entries; cucc's receipt applied %s after its PubAck",
		flood, took.Round(time.Millisecond), kept, si.State.Bytes, cmccApplied, elapsed.Round(time.Millisecond), updates, entries, cuccLag.Round(time.Millisecond))

	if kept > uint64(limits.ReceiptBacklog) {
		t.Errorf("the stream keeps %d of cmcc's receipts, want at most its backlog of %d", kept, limits.ReceiptBacklog)
	}
	if max := limits.ReceiptBurst + int(limits.ReceiptsPerSecond*elapsed.Seconds()) + 10; cmccApplied > max {
		t.Errorf("%d of cmcc's receipts applied in %s, want at most %d (burst + rate)", cmccApplied, elapsed, max)
	}
	if updates > flood/10 {
		t.Errorf("%d store transactions for a flood of %d", updates, flood)
	}
	// Status changes (cmcc's sending, cucc's delivered) and cmcc's
	// progress at most every ProgressRecordEvery.
	if max := 2 + int(elapsed/tocsin.ProgressRecordEvery) + 1; entries > max {
		t.Errorf("%d providers' audit entries from the flood in %s, want at most %d: %+v", entries, elapsed, max, c.audit(t, b.ID)[auditBefore:])
	}
	if cuccLag > 5*time.Second {
		t.Errorf("cucc's receipt took %s to apply behind cmcc's flood", cuccLag)
	}
	// cmcc's own receipts still apply, at its rate.
	c.waitBroadcast(t, b.ID, "cmcc's progress", func(b *tocsin.Broadcast) bool {
		p := progress(t, b, "cmcc")
		return p.Status == tocsin.DeliverySending && p.Sent > 0
	})
}
