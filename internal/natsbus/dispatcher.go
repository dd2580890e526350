package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// relayBatch is how many outbox messages one round publishes before it
// waits for their acknowledgements together.
const relayBatch = 512

// Dispatcher moves work between the store and JetStream: it publishes the
// outbox, applies receipts, turns dead letters into visible failures and
// watches providers' activity.
type Dispatcher struct {
	Bus     *Bus
	Service *tocsin.Service
	Log     *slog.Logger
	// OnPublished is told how many dispatches JetStream acknowledged.
	OnPublished func(n int)
	// OnReceipt is told each receipt's provider and status.
	OnReceipt func(provider string, status tocsin.DeliveryStatus)

	kick chan struct{}

	dequeues sync.WaitGroup // Dequeues not committed yet

	mu        sync.Mutex
	ready     bool                 // guarded by mu: streams and consumers exist
	lastSeen  map[string]time.Time // guarded by mu
	unremoved map[uint64]bool      // guarded by mu: acknowledged, Dequeue not committed yet
}

// NewDispatcher returns a dispatcher; Run starts it.
func NewDispatcher(bus *Bus, svc *tocsin.Service, log *slog.Logger) *Dispatcher {
	return &Dispatcher{
		Bus: bus, Service: svc, Log: log, kick: make(chan struct{}, 1),
		lastSeen: map[string]time.Time{}, unremoved: map[uint64]bool{},
	}
}

// Kick wakes the relay: the store has committed new dispatches. It never
// blocks.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Ready reports whether the dispatcher has set up JetStream and is
// connected.
func (d *Dispatcher) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready && d.Bus.Connected()
}

// LastSeen returns when a provider was last seen pulling or acknowledging.
func (d *Dispatcher) LastSeen(provider string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.lastSeen[provider]
	return t, ok
}

// Run sets JetStream up (retrying while NATS is unreachable), then relays
// the outbox, consumes receipts and watches for dead letters until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	if err := retry(ctx, d.Log, "set up jetstream", d.setup); err != nil {
		return err
	}
	d.mu.Lock()
	d.ready = true
	d.mu.Unlock()

	receipts, err := d.consumeReceipts(ctx)
	if err != nil {
		return err
	}
	defer receipts.Stop()
	deadLetters, err := d.Bus.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+DispatchStream+".*", d.deadLetter(ctx))
	if err != nil {
		return fmt.Errorf("nats: subscribe to dead-letter advisories: %w", err)
	}
	defer func() { _ = deadLetters.Unsubscribe() }()

	go d.watchActivity(ctx)
	d.relay(ctx)
	return nil
}

func (d *Dispatcher) setup(ctx context.Context) error {
	if err := d.Bus.EnsureStreams(ctx); err != nil {
		return err
	}
	var providers []*tocsin.Provider
	err := d.Service.Store.View(ctx, func(tx tocsin.ReadTx) error {
		var err error
		providers, err = tx.Providers()
		return err
	})
	if err != nil {
		return err
	}
	for _, p := range providers {
		if err := d.Bus.EnsureProviderConsumer(ctx, p.ID); err != nil {
			return err
		}
	}
	return nil
}

// retry calls fn until it succeeds or ctx ends, backing off to 5 s.
func retry(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	wait := 100 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(attempt)
		cancel()
		if err == nil {
			return nil
		}
		log.Warn("retrying", slog.String("what", what), slog.Any("error", err), slog.Duration("in", wait))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// relay publishes the outbox until ctx ends. It wakes on Kick, and polls
// once a second in case a kick was missed or a retry is due.
func (d *Dispatcher) relay(ctx context.Context) {
	defer d.dequeues.Wait()
	wait := 100 * time.Millisecond
	for {
		n, err := d.publishBatch(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			d.Log.Warn("outbox publish failed; will retry", slog.Any("error", err), slog.Duration("in", wait))
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(wait*2, 5*time.Second)
			continue
		case n == relayBatch:
			continue // more is waiting
		}
		wait = 100 * time.Millisecond
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		case <-time.After(time.Second):
		}
	}
}

// publishBatch publishes up to relayBatch outbox messages, waits for
// JetStream to acknowledge them, and has the acknowledged ones removed from
// the outbox in one transaction (see dequeue). A message is removed only
// after its PubAck, so a crash at any point republishes it, and the
// Nats-Msg-Id makes the republish a no-op.
func (d *Dispatcher) publishBatch(ctx context.Context) (int, error) {
	d.mu.Lock()
	skip := len(d.unremoved)
	d.mu.Unlock()
	var msgs []tocsin.OutboxMessage
	err := d.Service.Store.View(ctx, func(tx tocsin.ReadTx) error {
		var err error
		msgs, err = tx.Outbox(relayBatch + skip)
		return err
	})
	if err != nil {
		return 0, err
	}
	// Leave out what is published and only waiting for its Dequeue. Read
	// under the lock after the View: a Dequeue that committed before the
	// View is not in msgs; one still committing is in both.
	d.mu.Lock()
	msgs = slices.DeleteFunc(msgs, func(m tocsin.OutboxMessage) bool { return d.unremoved[m.Seq] })
	d.mu.Unlock()
	msgs = msgs[:min(len(msgs), relayBatch)]
	if len(msgs) == 0 {
		return 0, nil
	}
	if !d.Bus.Connected() {
		return 0, errNotConnected
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var firstErr error
	for _, m := range msgs {
		msg, err := dispatchMsg(m)
		if err != nil {
			return 0, err
		}
		f, err := d.Bus.js.PublishMsgAsync(msg, jetstream.WithExpectStream(DispatchStream))
		if err != nil {
			firstErr = fmt.Errorf("publish %s: %w", m.MsgID, err)
			break
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	var done []tocsin.OutboxMessage
	for i, f := range futures {
		select {
		case <-f.Ok():
			done = append(done, msgs[i])
		case err := <-f.Err():
			if firstErr == nil {
				firstErr = fmt.Errorf("publish %s: %w", msgs[i].MsgID, err)
			}
		case <-timeout.C:
			if firstErr == nil {
				firstErr = fmt.Errorf("publish %s: no acknowledgement within 10s", msgs[i].MsgID)
			}
		case <-ctx.Done():
			return len(done), ctx.Err()
		}
	}
	if len(done) > 0 {
		d.mu.Lock()
		for _, m := range done {
			d.unremoved[m.Seq] = true
		}
		d.mu.Unlock()
		d.dequeue(ctx, done)
		if d.OnPublished != nil {
			d.OnPublished(len(done))
		}
	}
	return len(done), firstErr
}

// dequeueWait bounds how long a Dequeue waits for a commit to share.
const dequeueWait = 50 * time.Millisecond

// laterUpdater is a store that can fold a change into its next commit.
// *boltstore.DB is one.
type laterUpdater interface {
	UpdateLater(wait time.Duration, fn func(tocsin.Tx) error, done func(error))
}

// dequeue removes published messages from the outbox without holding up
// the relay or anyone else. Committed on its own, the Dequeue's fsync would
// land just where the next filing's commit wants the writer: a department
// filing emergencies one after another would wait for it every time. So it
// rides along with the next commit (usually that very filing) or, after
// dequeueWait, goes alone. Until it has committed the relay leaves the
// messages out of what it reads; if it fails they are published again,
// and JetStream drops them as duplicates.
func (d *Dispatcher) dequeue(ctx context.Context, published []tocsin.OutboxMessage) {
	seqs := make([]uint64, len(published))
	for i, m := range published {
		seqs[i] = m.Seq
	}
	now := d.Service.Clock.Now()
	fn := func(tx tocsin.Tx) error {
		if err := tx.Dequeue(seqs...); err != nil {
			return err
		}
		for _, m := range published {
			err := tx.Audit(tocsin.AuditEntry{At: now, Action: tocsin.AuditDispatchPublished, By: "relay",
				Target: m.Dispatch.BroadcastID, After: m.Dispatch.Type, Note: m.Provider + " " + m.MsgID})
			if err != nil {
				return err
			}
		}
		return nil
	}
	d.dequeues.Add(1)
	finish := func(err error) {
		defer d.dequeues.Done()
		if err != nil {
			d.Log.Warn("dequeue of published dispatches failed; they will be published again", slog.Int("count", len(seqs)), slog.Any("error", err))
		}
		d.mu.Lock()
		for _, seq := range seqs {
			delete(d.unremoved, seq)
		}
		d.mu.Unlock()
	}
	if l, ok := d.Service.Store.(laterUpdater); ok {
		l.UpdateLater(dequeueWait, fn, finish)
		return
	}
	// Not ctx: once acknowledged, recording it should not be abandoned.
	go func() { finish(d.Service.Store.Update(context.WithoutCancel(ctx), fn)) }()
}

// consumeReceipts applies receipts as they arrive. A receipt is acked only
// once applied; one that can never apply is terminated and logged.
func (d *Dispatcher) consumeReceipts(ctx context.Context) (jetstream.ConsumeContext, error) {
	cons, err := d.Bus.js.Consumer(ctx, ReceiptStream, ReceiptConsumer)
	if err != nil {
		return nil, fmt.Errorf("nats: receipt consumer: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		provider := strings.TrimPrefix(msg.Subject(), ReceiptPrefix)
		var r tocsin.Receipt
		if err := json.Unmarshal(msg.Data(), &r); err != nil {
			d.Log.Warn("malformed receipt dropped", slog.String("provider", provider), slog.Any("error", err))
			_ = msg.Term()
			return
		}
		err := d.Service.ApplyReceipt(ctx, provider, r)
		switch code := tocsin.ErrorCode(err); {
		case err == nil:
			d.seen(provider, time.Now())
			if d.OnReceipt != nil {
				d.OnReceipt(provider, tocsin.DeliveryStatus(r.Status))
			}
			_ = msg.Ack()
		case code == tocsin.CodeInternal || code == tocsin.CodeUnavailable || errors.Is(err, context.Canceled):
			_ = msg.NakWithDelay(time.Second)
		default:
			d.Log.Warn("receipt refused", slog.String("provider", provider), slog.String("broadcast", r.BroadcastID), slog.Any("error", err))
			_ = msg.Term()
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		d.Log.Debug("receipt consumer", slog.Any("error", err))
	}))
	if err != nil {
		return nil, fmt.Errorf("nats: consume receipts: %w", err)
	}
	return cc, nil
}

// deadLetter handles JetStream's max-deliveries advisory: the provider's
// progress on that broadcast becomes failed, with the reason.
func (d *Dispatcher) deadLetter(ctx context.Context) nats.MsgHandler {
	return func(m *nats.Msg) {
		var adv struct {
			Consumer   string `json:"consumer"`
			StreamSeq  uint64 `json:"stream_seq"`
			Deliveries uint64 `json:"deliveries"`
		}
		if err := json.Unmarshal(m.Data, &adv); err != nil {
			d.Log.Warn("malformed advisory", slog.Any("error", err))
			return
		}
		stream, err := d.Bus.js.Stream(ctx, DispatchStream)
		if err != nil {
			d.Log.Error("dead letter: stream", slog.Any("error", err))
			return
		}
		raw, err := stream.GetMsg(ctx, adv.StreamSeq)
		if err != nil {
			d.Log.Error("dead letter: message", slog.Uint64("seq", adv.StreamSeq), slog.Any("error", err))
			return
		}
		id := raw.Header.Get(HeaderBroadcastID)
		reason := fmt.Sprintf("not acknowledged after %d deliveries", adv.Deliveries)
		d.Log.Warn("dead letter", slog.String("provider", adv.Consumer), slog.String("broadcast", id), slog.String("reason", reason))
		if err := d.Service.MarkUndeliverable(ctx, adv.Consumer, id, reason); err != nil {
			d.Log.Error("dead letter: record", slog.Any("error", err))
		}
	}
}

func (d *Dispatcher) seen(provider string, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.After(d.lastSeen[provider]) {
		d.lastSeen[provider] = t
	}
}

// watchActivity polls each provider's consumer, so a provider that pulls
// but has had nothing to receive still shows as alive.
func (d *Dispatcher) watchActivity(ctx context.Context) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		var providers []*tocsin.Provider
		_ = d.Service.Store.View(ctx, func(tx tocsin.ReadTx) error {
			var err error
			providers, err = tx.Providers()
			return err
		})
		for _, p := range providers {
			last, pulling, err := d.Bus.ProviderActivity(ctx, p.ID)
			if err != nil {
				continue
			}
			if pulling {
				last = time.Now()
			}
			if !last.IsZero() {
				d.seen(p.ID, last)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
