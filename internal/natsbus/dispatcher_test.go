package natsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/provider"
)

// fetchOne pulls one message from the provider's own consumer on its own
// connection, the way a provider (or `nats consumer next`) does.
func fetchOne(t *testing.T, js jetstream.JetStream, consumer string) jetstream.Msg {
	t.Helper()
	msgs := fetch(t, js, consumer, 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%s fetched %d messages, want 1", consumer, len(msgs))
	}
	return msgs[0]
}

func fetch(t *testing.T, js jetstream.JetStream, consumer string, n int, wait time.Duration) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, natsbus.DispatchStream, consumer)
	if err != nil {
		t.Fatalf("%s's consumer: %v", consumer, err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("fetch as %s: %v", consumer, err)
	}
	return out
}

func providerJS(t *testing.T, c *coordinator, id string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(c.connect(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// publishReceipt publishes a receipt as a provider and waits for its PubAck.
func publishReceipt(t *testing.T, js jetstream.JetStream, providerID string, r map[string]any, msgID string) {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, natsbus.ReceiptSubject(providerID), data, jetstream.WithMsgID(msgID))
	if err != nil {
		t.Fatalf("receipt as %s: %v", providerID, err)
	}
	if ack.Duplicate {
		t.Fatalf("receipt %s was dropped as a duplicate", msgID)
	}
}

// TestDispatchEndToEnd files an emergency and follows it through the
// outbox, JetStream, two reference providers and a raw one, back to a
// completed broadcast.
func TestDispatchEndToEnd(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, cmcc, cucc, ctcc, raw)
	c.startDispatcher(t)
	sim := provider.Simulation{RecipientsPerRegion: 100, PerSecond: 10000, Tick: 20 * time.Millisecond}
	c.runProvider(t, "cmcc", sim.Handle)
	c.runProvider(t, "cucc", sim.Handle)

	b := c.fileEmergency(t, "440100")
	var got []string
	for _, p := range b.Providers {
		got = append(got, p.Provider)
		if !slices.Equal(p.Regions, []string{"440100"}) {
			t.Errorf("%s's regions %v, want [440100]", p.Provider, p.Regions)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"cmcc", "cucc", "raw"}) {
		t.Fatalf("dispatched to %v, want cmcc, cucc and raw (ctcc covers only 450000)", got)
	}

	// The raw provider reads the dispatch exactly as it is on the wire.
	rawJS := providerJS(t, c, "raw")
	m := fetchOne(t, rawJS, "raw")
	if m.Subject() != natsbus.DispatchSubject("raw") {
		t.Errorf("subject %s", m.Subject())
	}
	h := m.Headers()
	if id := h.Get(jetstream.MsgIDHeader); id == "" {
		t.Errorf("no %s header", jetstream.MsgIDHeader)
	}
	if id := h.Get(natsbus.HeaderBroadcastID); id != b.ID {
		t.Errorf("%s header %q, want %q", natsbus.HeaderBroadcastID, id, b.ID)
	}
	if typ := h.Get(natsbus.HeaderType); typ != "broadcast" {
		t.Errorf("%s header %q, want broadcast", natsbus.HeaderType, typ)
	}
	var fields map[string]any
	if err := json.Unmarshal(m.Data(), &fields); err != nil {
		t.Fatalf("dispatch is not JSON: %v\n%s", err, m.Data())
	}
	wantKeys := []string{"agency", "broadcast_id", "charge", "content", "emergency", "exercise", "regions", "send_at", "sender_code", "type"}
	if keys := slices.Sorted(maps.Keys(fields)); !slices.Equal(keys, wantKeys) {
		t.Errorf("dispatch fields %v, want %v\n%s", keys, wantKeys, m.Data())
	}
	// The agency is the official Chinese name, never the English one.
	for k, want := range map[string]any{
		"broadcast_id": b.ID, "type": "broadcast", "sender_code": "12379440",
		"agency": "广东省气象局", "content": b.Content,
		"exercise": false, "charge": "free",
	} {
		if fields[k] != want {
			t.Errorf("dispatch %s = %#v, want %#v", k, fields[k], want)
		}
	}
	if r, _ := fields["regions"].([]any); len(r) != 1 || r[0] != "440100" {
		t.Errorf("dispatch regions %#v, want [440100]", fields["regions"])
	}
	if s, _ := fields["send_at"].(string); s == "" {
		t.Errorf("dispatch send_at %#v", fields["send_at"])
	} else if at, err := time.Parse(time.RFC3339Nano, s); err != nil || !at.Equal(b.SendAt) {
		t.Errorf("dispatch send_at %q (%v), want %s", s, err, b.SendAt.Format(time.RFC3339Nano))
	}
	em, _ := fields["emergency"].(map[string]any)
	if want := map[string]any{"type": "natural_disaster", "event": "typhoon", "level": "red"}; !maps.Equal(em, want) {
		t.Errorf("dispatch emergency %#v, want %#v", fields["emergency"], want)
	}
	ctx := testContext(t)
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	publishReceipt(t, rawJS, "raw", map[string]any{"broadcast_id": b.ID, "status": "delivered",
		"recipients": 100, "sent": 100, "delivered": 100, "failed": 0, "detail": "sent by hand"}, b.ID+".raw.delivered")

	done := c.waitBroadcast(t, b.ID, "the broadcast to complete", func(b *tocsin.Broadcast) bool {
		return b.Status == tocsin.StatusCompleted
	})
	for _, id := range []string{"cmcc", "cucc", "raw"} {
		p := progress(t, done, id)
		if p.Status != tocsin.DeliveryDelivered || p.Recipients != 100 || p.Sent != 100 || p.Delivered != 100 || p.Failed != 0 {
			t.Errorf("%s: %s, %d recipients, %d sent, %d delivered, %d failed; want delivered 100/100/100/0",
				id, p.Status, p.Recipients, p.Sent, p.Delivered, p.Failed)
		}
	}
	if done.CompletedAt == nil {
		t.Error("completed broadcast has no completed_at")
	}

	// ctcc covers none of the scope and was sent nothing.
	if msgs := fetch(t, providerJS(t, c, "ctcc"), "ctcc", 1, 300*time.Millisecond); len(msgs) != 0 {
		t.Errorf("ctcc fetched %d messages: %s", len(msgs), msgs[0].Data())
	}
	if info := consumerInfo(t, c.bus.JetStream(), "ctcc"); info.Delivered.Stream != 0 || info.NumPending != 0 {
		t.Errorf("ctcc's consumer delivered up to %d with %d pending, want nothing", info.Delivered.Stream, info.NumPending)
	}
	counts := subjectCounts(t, c.bus.JetStream(), natsbus.DispatchStream)
	want := map[string]uint64{"tocsin.dispatch.cmcc": 1, "tocsin.dispatch.cucc": 1, "tocsin.dispatch.raw": 1}
	if !maps.Equal(counts, want) {
		t.Errorf("dispatch stream holds %v, want %v", counts, want)
	}
}

// TestOutboxSurvivesUntilPublished files while no dispatcher runs, then
// starts one; and replays what a crash between PubAck and Dequeue would
// leave in the outbox.
func TestOutboxSurvivesUntilPublished(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, cmcc, cucc)
	js := c.bus.JetStream()
	streamMsgs := func() uint64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, natsbus.DispatchStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	b := c.fileEmergency(t, "440100")
	if n := c.outboxLen(t); n != 2 {
		t.Fatalf("outbox holds %d messages, want 2 (cmcc and cucc)", n)
	}
	var pending []tocsin.OutboxMessage
	err := c.store.View(testContext(t), func(tx tocsin.ReadTx) error {
		var err error
		pending, err = tx.Outbox(100)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range pending {
		if m.MsgID == "" || ids[m.MsgID] || m.BroadcastID != b.ID {
			t.Fatalf("outbox message %+v", m)
		}
		ids[m.MsgID] = true
	}
	if n := streamMsgs(); n != 0 {
		t.Fatalf("stream holds %d messages before any dispatcher ran", n)
	}

	_, stop := c.startDispatcher(t)
	waitFor(t, "the outbox to drain", func() (bool, error) { return c.outboxLen(t) == 0, nil })
	if n := streamMsgs(); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
	stop()

	// A crash after the PubAcks but before the Dequeue committed leaves the
	// outbox as it was; the next run publishes the same messages again.
	err = c.store.Update(testContext(t), func(tx tocsin.Tx) error {
		for _, m := range pending {
			if err := tx.Enqueue(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := c.outboxLen(t); n != 2 {
		t.Fatalf("outbox holds %d messages after the simulated crash, want 2", n)
	}
	c.startDispatcher(t)
	waitFor(t, "the replayed outbox to drain", func() (bool, error) { return c.outboxLen(t) == 0, nil })
	if n := streamMsgs(); n != 2 {
		t.Errorf("stream holds %d messages after the replay, want still 2", n)
	}

	// The broker says so itself: the same Nats-Msg-Id is a duplicate.
	for _, m := range pending {
		ack, err := js.PublishMsg(testContext(t), natsbus.DispatchMsg(m))
		if err != nil {
			t.Fatal(err)
		}
		if !ack.Duplicate {
			t.Errorf("republishing %s stored it again (seq %d)", m.MsgID, ack.Sequence)
		}
	}
	if n := streamMsgs(); n != 2 {
		t.Errorf("stream holds %d messages, want still 2", n)
	}
	for _, id := range []string{"cmcc", "cucc"} {
		if info := consumerInfo(t, js, id); info.NumPending != 1 {
			t.Errorf("%s's consumer has %d pending, want 1", id, info.NumPending)
		}
	}
}

// TestCancelStopsASendingProvider cancels a broadcast while a slow provider
// is sending it.
func TestCancelStopsASendingProvider(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, cmcc)
	c.startDispatcher(t)
	slow := provider.Simulation{RecipientsPerRegion: 1_000_000, PerSecond: 50, Tick: 20 * time.Millisecond}
	started := make(chan string, 4)
	ended := make(chan error, 4)
	c.runProvider(t, "cmcc", func(ctx context.Context, d provider.Dispatch, r *provider.Reporter) error {
		started <- d.BroadcastID
		err := slow.Handle(ctx, d, r)
		ended <- ctx.Err()
		return err
	})

	b := c.fileEmergency(t, "440100")
	select {
	case id := <-started:
		if id != b.ID {
			t.Fatalf("handler called for %s, want %s", id, b.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the provider's handler was not called")
	}
	c.waitBroadcast(t, b.ID, "cmcc to report sending", func(b *tocsin.Broadcast) bool {
		return hasProgress(b, "cmcc", tocsin.DeliverySending)
	})

	cancelled, err := c.svc.Cancel(testContext(t), gdCab, b.ID, "wrong district")
	if err != nil {
		t.Fatal(err)
	}
	if cancelled.Status != tocsin.StatusCancelled || !hasProgress(cancelled, "cmcc", tocsin.DeliveryStopped) {
		t.Fatalf("after Cancel: %s, cmcc %+v", cancelled.Status, cancelled.Providers)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler ended with ctx error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not cancelled")
	}

	// The stop on the wire, and the provider's acknowledgement of it.
	js := c.bus.JetStream()
	ctx := testContext(t)
	stream, err := js.Stream(ctx, natsbus.DispatchStream)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, natsbus.DispatchSubject("cmcc"))
	if err != nil {
		t.Fatal(err)
	}
	var stop map[string]any
	if err := json.Unmarshal(last.Data, &stop); err != nil {
		t.Fatal(err)
	}
	if stop["type"] != "stop" || stop["references"] != b.ID || stop["broadcast_id"] != b.ID || stop["sender_code"] != "12379440" {
		t.Errorf("last dispatch to cmcc: %s", last.Data)
	}
	if last.Header.Get(natsbus.HeaderType) != "stop" || last.Header.Get(jetstream.MsgIDHeader) == "" {
		t.Errorf("stop headers %v", last.Header)
	}
	waitFor(t, "cmcc to acknowledge the stop", func() (bool, error) {
		info := consumerInfo(t, js, "cmcc")
		return info.AckFloor.Stream >= last.Sequence && info.NumAckPending == 0, nil
	})
	after := c.waitBroadcast(t, b.ID, "cmcc's final receipt", func(b *tocsin.Broadcast) bool {
		return progress(t, b, "cmcc").Detail == "stopped by Tocsin"
	})
	if after.Status != tocsin.StatusCancelled || !hasProgress(after, "cmcc", tocsin.DeliveryStopped) {
		t.Errorf("after the provider's receipt: %s, cmcc %+v", after.Status, after.Providers)
	}
	select {
	case id := <-started:
		t.Errorf("handler called again for %s", id)
	default:
	}
}

// TestStopOvertakingItsOriginal publishes a stop before the broadcast it
// stops: the reference client never sends the broadcast. It also drops a
// second copy of a broadcast it already took on.
func TestStopOvertakingItsOriginal(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	n.addProvider(t, "cmcc")
	js := n.bus.JetStream()
	publish := func(d provider.Dispatch, msgID string) uint64 {
		t.Helper()
		data, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(testContext(t), natsbus.DispatchSubject("cmcc"), data, jetstream.WithMsgID(msgID))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	dispatch := func(id, typ string) provider.Dispatch {
		d := provider.Dispatch{BroadcastID: id, Type: typ, SenderCode: "12379440", Agency: "Guangdong Meteorological Service",
			Content: "台风预警", Regions: []string{"440100"}, SendAt: time.Now(), Charge: "free"}
		if typ != provider.TypeBroadcast {
			d.References = id
		}
		return d
	}
	publish(dispatch("B1", provider.TypeStop), "B1.stop.cmcc")
	origSeq := publish(dispatch("B1", provider.TypeBroadcast), "B1.broadcast.cmcc")

	calls := make(chan string, 8)
	ctx, cancel := context.WithCancel(context.Background())
	client, err := provider.Connect(ctx, provider.Config{URL: n.embedded.ClientURL(), ID: "cmcc", Creds: n.creds["cmcc"], Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- client.Run(ctx, func(ctx context.Context, d provider.Dispatch, r *provider.Reporter) error {
			calls <- d.BroadcastID
			return r.Done(ctx, 1, 1, 1, 0, "")
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		client.Close()
	})

	waitFor(t, "cmcc to acknowledge the overtaken broadcast", func() (bool, error) {
		info := consumerInfo(t, js, "cmcc")
		return info.AckFloor.Stream >= origSeq && info.NumAckPending == 0, nil
	})
	// The consumer hands messages over one by one, so once a later
	// broadcast reaches the handler, B1 was decided.
	b2 := dispatch("B2", provider.TypeBroadcast)
	publish(b2, "B2.broadcast.cmcc")
	select {
	case id := <-calls:
		if id != "B2" {
			t.Fatalf("handler called for %s, want B2 (B1 was stopped before it arrived)", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler not called for B2")
	}
	// A second copy of B2 (a re-send under a new message id) is dropped.
	againSeq := publish(b2, "B2.broadcast.cmcc.2")
	waitFor(t, "cmcc to acknowledge the copy", func() (bool, error) {
		info := consumerInfo(t, js, "cmcc")
		return info.AckFloor.Stream >= againSeq && info.NumAckPending == 0, nil
	})
	select {
	case id := <-calls:
		t.Errorf("handler called again, for %s", id)
	default:
	}
	// The same broadcast id for a different message (a coordinator
	// restored from a backup hands ids out again) is new, not a copy.
	reused := b2
	reused.Content = "暴雨预警"
	publish(reused, "B2.broadcast.cmcc.0123456789abcdef")
	select {
	case id := <-calls:
		if id != "B2" {
			t.Errorf("handler called for %s, want the reused B2", id)
		}
	case <-time.After(10 * time.Second):
		t.Error("a different broadcast under a reused id was dropped as a copy")
	}

	// B1 produced no receipt at all: the client did not even confirm it.
	rs, err := js.Stream(testContext(t), natsbus.ReceiptStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := rs.Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := rs.GetMsg(testContext(t), seq)
		if err != nil {
			t.Fatal(err)
		}
		var r provider.Receipt
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		if r.BroadcastID == "B1" {
			t.Errorf("receipt for stopped B1: %s", m.Data)
		}
	}
}

// TestStaleReceiptsDoNotMoveProgressBack replays older receipts after the
// final one, over NATS and directly.
func TestStaleReceiptsDoNotMoveProgressBack(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, raw)
	c.startDispatcher(t)
	b := c.fileEmergency(t, "440100")
	js := providerJS(t, c, "raw")
	if err := fetchOne(t, js, "raw").DoubleAck(testContext(t)); err != nil {
		t.Fatal(err)
	}
	receipt := func(status string, sent int) map[string]any {
		return map[string]any{"broadcast_id": b.ID, "status": status, "recipients": 100, "sent": sent, "delivered": sent, "failed": 0}
	}
	publishReceipt(t, js, "raw", receipt("received", 0), "1")
	publishReceipt(t, js, "raw", receipt("sending", 50), "2")
	publishReceipt(t, js, "raw", receipt("delivered", 100), "3")
	c.waitBroadcast(t, b.ID, "completion", func(b *tocsin.Broadcast) bool { return b.Status == tocsin.StatusCompleted })

	// Redelivered or reordered: older receipts arrive after the last one.
	publishReceipt(t, js, "raw", receipt("sending", 50), "4")
	publishReceipt(t, js, "raw", receipt("received", 0), "5")
	waitFor(t, "the coordinator to apply every receipt", func() (bool, error) {
		info := streamConsumerInfo(t, c.bus.JetStream(), natsbus.ReceiptStream, natsbus.ReceiptConsumer)
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == 5, nil
	})
	check := func(when string) {
		t.Helper()
		got, err := c.svc.Get(testContext(t), admin, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		p := progress(t, got, "raw")
		if got.Status != tocsin.StatusCompleted || p.Status != tocsin.DeliveryDelivered || p.Sent != 100 || p.Delivered != 100 {
			t.Errorf("%s: broadcast %s, raw %s with %d sent, %d delivered; want completed, delivered 100/100",
				when, got.Status, p.Status, p.Sent, p.Delivered)
		}
	}
	check("after stale receipts over NATS")

	for _, s := range []tocsin.DeliveryStatus{tocsin.DeliveryReceived, tocsin.DeliverySending} {
		if err := c.svc.ApplyReceipt(testContext(t), "raw", tocsin.Receipt{BroadcastID: b.ID, Status: string(s), Recipients: 100}); err != nil {
			t.Fatalf("ApplyReceipt %s: %v", s, err)
		}
	}
	check("after stale receipts applied directly")
}

// TestResendAfterProviderFailure re-sends a broadcast the provider failed:
// the reference client takes the re-send on (a redelivery it would drop),
// and its receipts for the new attempt are not lost as duplicates of the
// first attempt's, even when they say the same thing.
func TestResendAfterProviderFailure(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, cucc)
	c.startDispatcher(t)
	var attempts atomic.Int32
	c.runProvider(t, "cucc", func(ctx context.Context, d provider.Dispatch, r *provider.Reporter) error {
		if attempts.Add(1) <= 2 {
			return errors.New("gateway down")
		}
		return r.Done(ctx, 100, 100, 100, 0, "")
	})
	b := c.fileEmergency(t, "440100")
	failed := func(n int) func(*tocsin.Broadcast) bool {
		return func(b *tocsin.Broadcast) bool {
			p := progress(t, b, "cucc")
			return b.Status == tocsin.StatusCompleted && p.Status == tocsin.DeliveryFailed && p.Attempts == n && p.Detail == "gateway down"
		}
	}
	c.waitBroadcast(t, b.ID, "the first attempt to fail", failed(0))
	for i := 1; i <= 2; i++ {
		if _, err := c.svc.Resend(testContext(t), gdCab, b.ID, "cucc"); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			c.waitBroadcast(t, b.ID, "the re-send to fail the same way", failed(1))
		}
	}
	done := c.waitBroadcast(t, b.ID, "the second re-send to deliver", func(b *tocsin.Broadcast) bool {
		return b.Status == tocsin.StatusCompleted && hasProgress(b, "cucc", tocsin.DeliveryDelivered)
	})
	if p := progress(t, done, "cucc"); p.Delivered != 100 || p.Attempts != 2 {
		t.Errorf("cucc: %d delivered after %d re-sends, want 100 after 2", p.Delivered, p.Attempts)
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("handler called %d times, want 3", n)
	}
}

// TestAtomicBatchRefusedForADuplicateLosesNothing has the relay publish a
// round as one atomic batch that JetStream refuses, because one of its
// messages is already in the stream (published before a crash): the round
// is published again message by message, the duplicate is recognised as
// our own, and every other dispatch is delivered, each once.
func TestAtomicBatchRefusedForADuplicateLosesNothing(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, cmcc, cucc)
	js := c.bus.JetStream()
	ctx := testContext(t)
	if err := c.bus.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	const filings = 6 // 12 dispatches: one atomic batch
	for range filings {
		c.fileEmergency(t, "440100")
	}
	pending := c.outbox(t)
	if len(pending) != 2*filings {
		t.Fatalf("outbox holds %d messages, want %d", len(pending), 2*filings)
	}
	// One of them made it to the stream before a crash.
	first := pending[3]
	if _, err := js.PublishMsg(ctx, natsbus.DispatchMsg(first)); err != nil {
		t.Fatal(err)
	}

	c.startDispatcher(t)
	waitFor(t, "the outbox to drain", func() (bool, error) { return c.outboxLen(t) == 0, nil })
	for _, id := range []string{"cmcc", "cucc"} {
		got := map[string]int{}
		for _, m := range fetch(t, providerJS(t, c, id), id, 2*filings, 2*time.Second) {
			got[m.Headers().Get(jetstream.MsgIDHeader)]++
			_ = m.Ack()
		}
		for _, m := range pending {
			if m.Provider == id && got[m.MsgID] != 1 {
				t.Errorf("%s received %s %d times, want once", id, m.MsgID, got[m.MsgID])
			}
		}
		if len(got) != filings {
			t.Errorf("%s received %d dispatches, want %d", id, len(got), filings)
		}
	}
}

// TestPublishAtomic stores a batch whole, and refuses a batch holding a
// duplicate whole.
func TestPublishAtomic(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, cmcc)
	ctx := testContext(t)
	if err := c.bus.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	batch := func(ids ...string) []*nats.Msg {
		var msgs []*nats.Msg
		for _, id := range ids {
			m := nats.NewMsg(natsbus.DispatchSubject("cmcc"))
			m.Data = []byte(id)
			m.Header.Set(jetstream.MsgIDHeader, id)
			msgs = append(msgs, m)
		}
		return msgs
	}
	ack, err := natsbus.PublishAtomic(ctx, c.bus.Conn(), "b1", batch("a", "b", "c"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Count != 3 || ack.Stream != natsbus.DispatchStream || ack.Sequence != 3 {
		t.Errorf("PubAck %+v, want 3 messages ending at 3 in %s", ack, natsbus.DispatchStream)
	}
	_, err = natsbus.PublishAtomic(ctx, c.bus.Conn(), "b2", batch("d", "b", "e"))
	if !natsbus.IsBatchDuplicate(err) {
		t.Fatalf("batch with a duplicate: %v, want refused as a duplicate", err)
	}
	s, err := c.bus.JetStream().Stream(ctx, natsbus.DispatchStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages, want 3: a refused batch stores nothing", info.State.Msgs)
	}
}

// The dispatcher learns who is pulling from the stream's consumer list in
// one go: a provider that pulls is seen, one that never connected is not.
func TestProviderActivityFromTheConsumerList(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, cmcc, cucc)
	d, _ := c.startDispatcher(t, func(d *natsbus.Dispatcher) { d.ActivityEvery = time.Second })
	sim := provider.Simulation{RecipientsPerRegion: 100, PerSecond: 10000, Tick: 20 * time.Millisecond}
	c.runProvider(t, "cmcc", sim.Handle)
	ctx := testContext(t)
	for {
		activity, err := c.bus.ConsumersActivity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(activity) != 2 {
			t.Fatalf("activity of %d consumers, want cmcc's and cucc's: %v", len(activity), activity)
		}
		if activity["cmcc"].Pulling {
			if activity["cucc"].Pulling {
				t.Fatal("cucc pulls without a client")
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("cmcc's client never showed as pulling")
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The activity loop's first round ran at start; the next is within 1 s.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := d.LastSeen("cmcc"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher never saw cmcc")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok := d.LastSeen("cucc"); ok {
		t.Error("cucc seen without a client")
	}
}

// Before the relay has made the dispatch stream (every fresh start) there
// is no activity to read, and that is not a failure to log.
func TestProviderActivityBeforeTheStream(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t)
	ctx := testContext(t)
	if err := c.bus.JetStream().DeleteStream(ctx, natsbus.DispatchStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatal(err)
	}
	activity, err := c.bus.ConsumersActivity(ctx)
	if err != nil || len(activity) != 0 {
		t.Errorf("ConsumersActivity without the stream = %v, %v; want none and no error", activity, err)
	}
}
