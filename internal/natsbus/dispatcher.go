package natsbus

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/tocsin-dev/tocsin/internal/supervise"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

const (
	// relayBatch is how many outbox messages one round publishes before
	// it waits for their acknowledgements together: as many as one
	// atomic batch holds.
	relayBatch = MaxAtomicBatch
	// relayLinger is how long the relay waits before it reads the next
	// round, after a round busy enough to go as an atomic batch while
	// more dispatches were queued. Each batch costs the server a staging
	// store of its own (a directory and files made, synced and removed),
	// about 80 µs of CPU per filing in the 150-message batches that
	// filings at full speed gather in one round; waiting lets a round
	// gather two to four times that, and a dispatch under such a load
	// waits at most this much longer. A lone filing, or one fan-out, goes
	// at once.
	relayLinger = 30 * time.Millisecond
	// atomicFrom is the fewest messages a round publishes as one atomic
	// batch. A batch costs a fixed few milliseconds (the server stages it
	// in a store of its own, synced, before committing it), so a round of
	// a lone filing's dispatches is faster published directly, each with
	// its own sync, all in flight together.
	atomicFrom = 8
	// receiptBatch bounds how many receipts share one transaction.
	receiptBatch = 512
	// setupTimeout bounds creating the streams and consumers a loop needs.
	setupTimeout = 15 * time.Second
	// probeEvery is how often the relay tries a one-message round while
	// the dispatch stream answers nothing (see relayLoop).
	probeEvery = 250 * time.Millisecond
	// resetupAfter is how long publishing may fail before the relay
	// recreates the streams and consumers, in case they are gone.
	resetupAfter = 3 * time.Second
)

// Thresholds past which the dispatcher is not doing its job, for readiness.
const (
	OutboxStallAfter  = 5 * time.Second
	RelayFailingAfter = 2 * time.Second
	ReceiptLagAfter   = 10 * time.Second
	NATSDownAfter     = time.Second
)

// Loop names, as logs, metrics and readiness show them.
const (
	LoopRelay       = "dispatch-relay"
	LoopReceipts    = "receipts"
	LoopDeadLetters = "dead-letters"
	LoopReconcile   = "dead-letter-reconcile"
	LoopActivity    = "provider-activity"
)

// Hooks tell metrics what the dispatcher does; any may be nil.
type Hooks struct {
	// Published is told of each dispatch JetStream acknowledged, with the
	// time since it became durable (zero when unknown).
	Published func(provider string, sinceDurable time.Duration)
	// Receipt is told of each receipt applied.
	Receipt func(provider string, status tocsin.DeliveryStatus)
	// Received is told of a provider's first receipt for a dispatch, with
	// the time since it was queued.
	Received func(provider string, sinceQueued time.Duration)
	// DuplicateAck is told when JetStream took a new dispatch for an
	// earlier, different message.
	DuplicateAck func()
	// DeadLetter is told when a provider's dispatch is given up.
	DeadLetter func(provider string)
	// ReceiptOverRate is told of each receipt sent back to wait because
	// its provider is over its rate.
	ReceiptOverRate func(provider string)
}

// Dispatcher moves work between the store and JetStream: it publishes the
// outbox, applies receipts, turns dead letters into visible failures and
// watches providers' activity. Each of those is a loop run under a
// supervisor (Start), so none can stop for good while Tocsin serves.
type Dispatcher struct {
	Bus     *Bus
	Service *tocsin.Service
	Log     *slog.Logger
	Hooks   Hooks
	// GiveUpAfter and ReconcileEvery tune the reconciliation of dead
	// letters no advisory announced; zero means the defaults (2m40s,
	// every minute).
	GiveUpAfter, ReconcileEvery time.Duration
	// ActivityEvery is how often providers' activity is read from the
	// consumer list; zero means every 30 s (activityEvery).
	ActivityEvery time.Duration

	// Used by the receipt loop alone.
	limiter        *receiptLimiter
	overRateLogged map[string]time.Time
	refusedLogged  map[string]time.Time

	kick     chan struct{}
	dequeues sync.WaitGroup // Dequeues not committed yet

	mu            sync.Mutex
	lastSeen      map[string]time.Time // guarded by mu
	unremoved     map[uint64]bool      // guarded by mu: acknowledged, Dequeue not committed yet
	dequeued      map[uint64]bool      // guarded by mu: Dequeue committed since the relay's outbox read began
	relayUp       bool                 // guarded by mu: streams set up, relay running
	lastProgress  time.Time            // guarded by mu: the relay's last round that failed nothing
	failingSince  time.Time            // guarded by mu: first failure of the current streak
	relayErr      error                // guarded by mu: the streak's latest error
	receiptsHead  time.Time            // guarded by mu: publish time of the oldest receipt taken, not applied
	jsCheckedAt   time.Time            // guarded by mu
	jsCheckResult error                // guarded by mu
	held          map[string]bool      // guarded by mu: disabled providers, whose dispatches wait
}

// NewDispatcher returns a dispatcher; Start or Run starts it.
func NewDispatcher(bus *Bus, svc *tocsin.Service, log *slog.Logger) *Dispatcher {
	return &Dispatcher{
		Bus: bus, Service: svc, Log: log, kick: make(chan struct{}, 1),
		lastSeen: map[string]time.Time{}, unremoved: map[uint64]bool{}, dequeued: map[uint64]bool{},
		lastProgress: time.Now(),
	}
}

// Start runs the dispatcher's loops under sup until ctx ends.
func (d *Dispatcher) Start(ctx context.Context, sup *supervise.Supervisor) {
	sup.Go(ctx, LoopRelay, d.relayLoop)
	sup.Go(ctx, LoopReceipts, d.receiptLoop)
	sup.Go(ctx, LoopDeadLetters, d.deadLetterLoop)
	sup.Go(ctx, LoopReconcile, d.reconcileLoop)
	sup.Go(ctx, LoopActivity, d.activityLoop)
}

// Run runs the dispatcher under a supervisor of its own until ctx ends,
// and returns once every loop has.
func (d *Dispatcher) Run(ctx context.Context) error {
	sup := &supervise.Supervisor{Log: d.Log}
	d.Start(ctx, sup)
	<-ctx.Done()
	sup.Wait()
	return nil
}

// Kick wakes the relay: the store has committed new dispatches. It never
// blocks.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// kicked takes a pending Kick, if there is one.
func (d *Dispatcher) kicked() bool {
	select {
	case <-d.kick:
		return true
	default:
		return false
	}
}

// Ready reports whether the relay has set up JetStream, is running and
// connected.
func (d *Dispatcher) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.relayUp && d.Bus.Connected()
}

// LastSeen returns when a provider was last seen pulling or acknowledging.
func (d *Dispatcher) LastSeen(provider string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.lastSeen[provider]
	return t, ok
}

// RelayLastProgress is when the relay last finished a round without a
// failure: it published what it found, or found nothing to publish.
func (d *Dispatcher) RelayLastProgress() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastProgress
}

// ReceiptLag is how long the oldest receipt the coordinator has taken but
// not yet applied has waited since its provider published it.
func (d *Dispatcher) ReceiptLag() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.receiptsHead.IsZero() {
		return 0
	}
	return time.Since(d.receiptsHead)
}

// OldestOutbox is how long the oldest dispatch waiting in the outbox has
// been durable, leaving out disabled providers' (they wait on purpose);
// zero when none waits. The count is of every waiting dispatch.
func (d *Dispatcher) OldestOutbox(ctx context.Context) (time.Duration, int, error) {
	var age time.Duration
	var n int
	err := d.Service.Store.View(ctx, func(tx tocsin.ReadTx) error {
		var err error
		if n, err = tx.OutboxLen(); err != nil || n == 0 {
			return err
		}
		oldest, err := tx.OutboxExcept(1, d.heldNow(), nil)
		if err != nil || len(oldest) == 0 {
			return err
		}
		if at := oldest[0].EnqueuedAt; !at.IsZero() {
			age = max(time.Since(at), 0)
		} else {
			// Stored before enqueue times were: judge by the relay.
			age = time.Since(d.RelayLastProgress())
		}
		return nil
	})
	return age, n, err
}

// Problems returns what stops the dispatcher from doing its job now, as
// readiness reasons; none means it is dispatching.
func (d *Dispatcher) Problems(ctx context.Context) []string {
	var reasons []string
	if since := d.Bus.DownSince(); !since.IsZero() && time.Since(since) >= NATSDownAfter {
		reasons = append(reasons, fmt.Sprintf("NATS disconnected since %s", since.Format(time.RFC3339)))
	} else if err := d.checkJetStream(ctx); err != nil {
		reasons = append(reasons, err.Error())
	}
	d.mu.Lock()
	failingSince, relayErr, relayUp := d.failingSince, d.relayErr, d.relayUp
	d.mu.Unlock()
	if !relayUp {
		reasons = append(reasons, "the dispatch relay has not set up its streams and consumers yet")
	}
	if !failingSince.IsZero() && time.Since(failingSince) >= RelayFailingAfter {
		reasons = append(reasons, fmt.Sprintf("publishing dispatches has failed since %s: %v", failingSince.Format(time.RFC3339), relayErr))
	}
	if age, n, err := d.OldestOutbox(ctx); err != nil {
		reasons = append(reasons, fmt.Sprintf("outbox unreadable: %v", err))
	} else if age >= OutboxStallAfter {
		reasons = append(reasons, fmt.Sprintf("outbox not progressing: %d dispatch(es) waiting, the oldest for %s", n, age.Round(time.Second)))
	}
	if lag := d.ReceiptLag(); lag >= ReceiptLagAfter {
		reasons = append(reasons, fmt.Sprintf("receipts lagging: the oldest unapplied receipt is %s old", lag.Round(time.Second)))
	}
	return reasons
}

// checkJetStream asks JetStream whether it answers, at most once a second
// however often readiness is polled.
func (d *Dispatcher) checkJetStream(ctx context.Context) error {
	d.mu.Lock()
	if time.Since(d.jsCheckedAt) < time.Second {
		err := d.jsCheckResult
		d.mu.Unlock()
		return err
	}
	d.mu.Unlock()
	err := d.Bus.CheckJetStream(ctx)
	d.mu.Lock()
	d.jsCheckedAt, d.jsCheckResult = time.Now(), err
	d.mu.Unlock()
	return err
}

// setupTimed runs fn with the setup deadline.
func setupTimed(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	return fn(ctx)
}

// setupDispatch creates or updates the streams and every provider's
// consumer.
func (d *Dispatcher) setupDispatch(ctx context.Context) error {
	return setupTimed(ctx, func(ctx context.Context) error {
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
		held := map[string]bool{}
		for _, p := range providers {
			if p.Disabled {
				held[p.ID] = true
			}
		}
		d.mu.Lock()
		d.held = held
		d.mu.Unlock()
		for _, p := range providers {
			if err := d.Bus.EnsureProviderConsumer(ctx, p.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// Hold holds (or, with false, releases) provider's dispatches: held ones
// stay in the outbox, the relay passes over them and publishes the
// others'. Disabling a provider in the store holds it from the next
// start on; Hold does it now.
func (d *Dispatcher) Hold(provider string, held bool) {
	d.mu.Lock()
	if d.held == nil {
		d.held = map[string]bool{}
	}
	if held {
		d.held[provider] = true
	} else {
		delete(d.held, provider)
	}
	d.mu.Unlock()
	if !held {
		d.Kick()
	}
}

// heldNow is a copy of the held providers.
func (d *Dispatcher) heldNow() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.held)
}

// relayLoop publishes the outbox until ctx ends. It wakes on Kick, and
// polls once a second in case a kick was missed or a retry is due.
func (d *Dispatcher) relayLoop(ctx context.Context) error {
	// Set up with a short backoff of its own rather than the supervisor's
	// longer one: dispatch must resume within a second of NATS answering.
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, time.Second) {
		err := errNotConnected
		if d.Bus.Connected() {
			err = d.setupDispatch(ctx)
		}
		if err == nil {
			break
		}
		d.relayFailed(fmt.Errorf("set up dispatch streams: %w", err))
		d.Log.Warn("setting up dispatch streams failed; retrying", slog.Any("error", err), slog.Duration("in", wait))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	d.mu.Lock()
	d.relayUp = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.relayUp = false
		d.mu.Unlock()
	}()
	defer d.dequeues.Wait()
	wait := 100 * time.Millisecond
	limit := relayBatch
	var warned, askedGone time.Time
	for {
		n, err := d.publishBatch(ctx, limit)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			since := d.relayFailed(err)
			// While nothing takes the stream's messages (its leader
			// lost, an election on, the connection down), rounds go out
			// as one message, often: a stream gets its new leader up to
			// 9 s after losing one (nats-server's election timeout), and
			// dispatch must resume right after, not a second and a
			// thousand-message batch later. Any other failure gets whole
			// rounds, so that no one message can hold up the others.
			pause := wait
			limit, wait = relayBatch, min(wait*2, time.Second)
			if streamAbsent(err) {
				limit, pause = 1, min(pause, probeEvery)
			}
			if time.Since(warned) >= 5*time.Second {
				warned = time.Now()
				d.Log.Warn("publishing dispatches failed; retrying", slog.Any("error", err), slog.Duration("in", pause),
					slog.Duration("failing for", time.Since(since).Round(time.Millisecond)))
			}
			// Asked every resetupAfter, not every round: the question
			// takes up to a second while the stream has no leader,
			// which would slow every probe down.
			if time.Since(since) >= resetupAfter && time.Since(askedGone) >= resetupAfter {
				askedGone = time.Now()
				if d.dispatchStreamGone(ctx) {
					// Whatever failed may have taken the streams with it
					// (a JetStream restarted on an empty store): make them
					// again, and publish again what they may have held.
					if err := d.setupDispatch(ctx); err != nil && ctx.Err() == nil {
						d.Log.Warn("recreating dispatch streams failed", slog.Any("error", err))
					} else if err == nil {
						d.Republish(ctx)
					}
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
			continue
		}
		probed := limit < relayBatch
		limit, wait, warned = relayBatch, 100*time.Millisecond, time.Time{}
		d.relayProgressed()
		if n == relayBatch || probed {
			continue // more is waiting, or may be: the probe took one
		}
		if n >= atomicFrom && d.kicked() {
			// Filings kept coming while this batch was out: let them
			// gather into the next.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(relayLinger):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.kick:
		case <-time.After(time.Second):
		}
	}
}

// dispatchStreamGone reports whether JetStream answers that the dispatch
// stream does not exist. A stream that is there but has no leader for the
// moment (a cluster node was lost, an election is on) answers nothing, and
// recreating it then would hold the relay up for setupTimeout while the
// meta leader is elected too, long after the stream has a new leader.
func (d *Dispatcher) dispatchStreamGone(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := d.Bus.js.Stream(ctx, DispatchStream)
	return errors.Is(err, jetstream.ErrStreamNotFound)
}

// Republish queues again, under their first ids, the dispatches of the
// last duplicate window not yet received, after JetStream may have lost
// messages it had acknowledged (a stream store that failed to write, a
// stream recreated). Those it kept are dropped as duplicates.
func (d *Dispatcher) Republish(ctx context.Context) {
	since := d.Service.Clock.Now().Add(-(dedupWindow - 5*time.Minute))
	n, err := d.Service.Republish(ctx, since)
	if err != nil {
		d.Log.Error("republishing unreceived dispatches failed", slog.Any("error", err))
		return
	}
	d.Log.Warn("JetStream may have lost acknowledged dispatches; republishing those not yet received", slog.Int("count", n))
}

func (d *Dispatcher) relayFailed(err error) (since time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failingSince.IsZero() {
		d.failingSince = time.Now()
	}
	d.relayErr = err
	return d.failingSince
}

func (d *Dispatcher) relayProgressed() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.failingSince.IsZero() {
		d.Log.Info("publishing dispatches again", slog.Duration("after", time.Since(d.failingSince).Round(time.Millisecond)))
	}
	d.lastProgress, d.failingSince, d.relayErr = time.Now(), time.Time{}, nil
}

// streamAbsent tells a failed round whose evidence is the stream's, not
// one message's: nothing took the publish (no stream leader, an election
// on) or no connection to send it on. A missing acknowledgement is not
// such evidence (one message can go unanswered while the others are
// taken), so a round that only timed out is followed by a whole one.
func streamAbsent(err error) bool {
	return errors.Is(err, errNotConnected) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders)
}

// publishBatch publishes up to limit outbox messages, waits for
// JetStream to acknowledge them, and has the acknowledged ones removed from
// the outbox in one transaction (see dequeue). A message is removed only
// after its PubAck, so a crash at any point republishes it, and the
// Nats-Msg-Id makes the republish a no-op. Every acknowledgement has its
// own deadline: one that never comes fails the round, and the message is
// published again under the same id.
func (d *Dispatcher) publishBatch(ctx context.Context, limit int) (int, error) {
	d.mu.Lock()
	inFlight := maps.Clone(d.unremoved)
	clear(d.dequeued)
	held := maps.Clone(d.held)
	d.mu.Unlock()
	var msgs []tocsin.OutboxMessage
	err := d.Service.Store.View(ctx, func(tx tocsin.ReadTx) error {
		var err error
		msgs, err = tx.OutboxExcept(limit, held, inFlight)
		return err
	})
	if err != nil {
		return 0, err
	}
	// Leave out what is published and only waiting for its Dequeue, or
	// whose Dequeue committed while the View read: the View's snapshot may
	// predate that commit, and the message is out of unremoved by now.
	// (Republished, JetStream would drop it as a duplicate, but only after
	// a lookup per message; a whole batch went round again that way.) A
	// Dequeue that committed before dequeued was cleared is not in msgs.
	d.mu.Lock()
	msgs = slices.DeleteFunc(msgs, func(m tocsin.OutboxMessage) bool { return d.unremoved[m.Seq] || d.dequeued[m.Seq] })
	d.mu.Unlock()
	msgs = msgs[:min(len(msgs), limit)]
	if len(msgs) == 0 {
		return 0, nil
	}
	if !d.Bus.Connected() {
		return 0, errNotConnected
	}
	var done []tocsin.OutboxMessage
	var firstErr error
	if len(msgs) < atomicFrom {
		done, firstErr = d.publishEach(ctx, msgs)
	} else {
		done, firstErr = d.publishAtomic(ctx, msgs)
	}
	if ctx.Err() != nil {
		return len(done), ctx.Err()
	}
	if len(done) > 0 {
		d.mu.Lock()
		for _, m := range done {
			d.unremoved[m.Seq] = true
		}
		d.mu.Unlock()
		d.dequeue(ctx, done)
		now := time.Now()
		for _, m := range done {
			if d.Hooks.Published != nil {
				var since time.Duration
				if !m.EnqueuedAt.IsZero() {
					since = max(now.Sub(m.EnqueuedAt), 0)
				}
				d.Hooks.Published(m.Provider, since)
			}
		}
	}
	return len(done), firstErr
}

// publishAtomic publishes msgs as one JetStream atomic batch: all are
// stored, with one sync, or none, and the batch's PubAck is the evidence
// for every one of them. A batch refused for a duplicate id (a republish
// after a crash or a lost acknowledgement, or a collision) stored nothing:
// its messages are published again one by one, so that each duplicate is
// checked (checkDuplicate) and the others are not lost. A stream that does
// not take atomic batches gets them one by one too.
func (d *Dispatcher) publishAtomic(ctx context.Context, msgs []tocsin.OutboxMessage) ([]tocsin.OutboxMessage, error) {
	batch := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		batch[i] = dispatchMsg(m)
	}
	// One message checking the stream is enough: a batch is one stream's,
	// and a refused message abandons the whole of it. nats-server scans
	// every message's headers once for each header it knows; a seventh
	// on each of a round's thousand messages was a cost and no check.
	batch[0].Header.Set(jetstream.ExpectedStreamHeader, DispatchStream)
	ackCtx, cancel := context.WithTimeout(ctx, publishAckWait)
	defer cancel()
	_, err := PublishAtomic(ackCtx, d.Bus.nc, nuid.Next(), batch)
	switch {
	case err == nil:
		return msgs, nil
	case IsBatchDuplicate(err) || isBatchDisabled(err):
		d.Log.Debug("atomic batch refused; publishing its dispatches one by one", slog.Int("count", len(msgs)), slog.Any("error", err))
		return d.publishEach(ctx, msgs)
	}
	// Nothing is known to be stored: the round fails, and the messages
	// are published again under the same ids.
	return nil, fmt.Errorf("publish %d dispatches from %s: %w", len(msgs), msgs[0].MsgID, err)
}

func isBatchDisabled(err error) bool {
	var be *BatchError
	return errors.As(err, &be) && be.ErrCode == errCodeBatchDisabled
}

// publishEach publishes msgs one by one, all in flight together, and
// returns those JetStream acknowledged: new, or our own message already
// in the stream (checkDuplicate).
func (d *Dispatcher) publishEach(ctx context.Context, msgs []tocsin.OutboxMessage) ([]tocsin.OutboxMessage, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var firstErr error
	for _, m := range msgs {
		f, err := d.Bus.js.PublishMsgAsync(dispatchMsg(m), jetstream.WithExpectStream(DispatchStream))
		if err != nil {
			firstErr = fmt.Errorf("publish %s: %w", m.MsgID, err)
			break
		}
		futures = append(futures, f)
	}
	// Each future fails by itself after publishAckWait; this bounds the
	// whole wait as well, should one never be answered at all.
	waitCtx, cancel := context.WithTimeout(ctx, publishAckWait+time.Second)
	defer cancel()
	var done []tocsin.OutboxMessage
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
wait:
	for i, f := range futures {
		m := msgs[i]
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				if err := d.checkDuplicate(waitCtx, ack, f.Msg(), m); err != nil {
					fail(err)
					continue
				}
			}
			done = append(done, m)
		case err := <-f.Err():
			fail(fmt.Errorf("publish %s: %w", m.MsgID, err))
		case <-waitCtx.Done():
			if ctx.Err() != nil {
				return done, ctx.Err()
			}
			fail(fmt.Errorf("publish %s: no acknowledgement within %s", m.MsgID, publishAckWait))
			break wait
		}
	}
	return done, firstErr
}

// errDuplicateCollision is a publish JetStream dropped as a duplicate of a
// different message.
var errDuplicateCollision = errors.New("JetStream dropped a new dispatch as a duplicate of a different message")

// checkDuplicate tells a true republish (our own message, published before
// a crash or a lost acknowledgement) from a collision, by reading the
// message JetStream says it already has. A collision is renewed under a
// fresh id and published again: never counted as delivered. A lookup that
// fails proves nothing (right after a leader change it often times out):
// the message stays in the outbox under its id and the next round asks
// again, since renewing our own stored message would deliver it twice.
func (d *Dispatcher) checkDuplicate(ctx context.Context, ack *jetstream.PubAck, sent *nats.Msg, m tocsin.OutboxMessage) error {
	stream, err := d.Bus.js.Stream(ctx, DispatchStream)
	var stored *jetstream.RawStreamMsg
	if err == nil {
		stored, err = stream.GetMsg(ctx, ack.Sequence)
	}
	switch {
	case err == nil && stored.Header.Get(jetstream.MsgIDHeader) == m.MsgID && bytes.Equal(stored.Data, sent.Data):
		return nil // our own message, already in the stream
	case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
		// A lookup that failed (a timeout, the relay stopping) says
		// nothing about a collision, and renewing a true republish would
		// send it a second time: fail the round, publish the same id again.
		return fmt.Errorf("publish %s: acknowledged as a duplicate, not checked: %w", m.MsgID, err)
	}
	if d.Hooks.DuplicateAck != nil {
		d.Hooks.DuplicateAck()
	}
	d.Log.Warn("dispatch taken for a different message with the same id; sending it again under a fresh id",
		slog.String("msg_id", m.MsgID), slog.String("broadcast", m.BroadcastID), slog.String("provider", m.Provider),
		slog.Uint64("stream_seq", ack.Sequence), slog.Any("lookup_error", err))
	if _, err := d.Service.RenewMsgID(context.WithoutCancel(ctx), m); err != nil {
		return fmt.Errorf("%w: %s, and renewing its id failed: %w", errDuplicateCollision, m.MsgID, err)
	}
	return fmt.Errorf("%w: %s (renewed)", errDuplicateCollision, m.MsgID)
}

// publishedEntries are the audit entries for dispatches published
// together: one per broadcast and dispatch type, its note listing each
// provider with the message id ("cmcc BC000001.broadcast.cmcc.…; cucc …"),
// so a fan-out to 300 providers is one entry and not 300.
func publishedEntries(published []tocsin.OutboxMessage, now time.Time) []tocsin.AuditEntry {
	type group struct{ broadcast, typ string }
	var entries []tocsin.AuditEntry
	index := map[group]int{}
	for _, m := range published {
		g := group{m.BroadcastID, m.Type}
		i, ok := index[g]
		if !ok {
			i = len(entries)
			index[g] = i
			entries = append(entries, tocsin.AuditEntry{At: now, Action: tocsin.AuditDispatchPublished, By: "relay", Target: g.broadcast, After: g.typ})
		} else {
			entries[i].Note += "; "
		}
		entries[i].Note += m.Provider + " " + m.MsgID
	}
	return entries
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
		for _, e := range publishedEntries(published, now) {
			if err := tx.Audit(e); err != nil {
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
		} else {
			for _, m := range published {
				d.Log.Info("dispatch published", slog.String("broadcast", m.BroadcastID), slog.String("type", m.Type),
					slog.String("provider", m.Provider), slog.String("msg_id", m.MsgID))
			}
		}
		d.mu.Lock()
		for _, seq := range seqs {
			delete(d.unremoved, seq)
			if err == nil {
				d.dequeued[seq] = true
			}
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

// receiptLoop applies receipts as they arrive, as many to a transaction
// as have queued up while the last one committed. A receipt is acked only
// once applied; one that can never apply is terminated and logged.
func (d *Dispatcher) receiptLoop(ctx context.Context) error {
	if err := setupTimed(ctx, d.Bus.EnsureStreams); err != nil {
		return fmt.Errorf("set up receipt stream: %w", err)
	}
	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	cons, err := d.Bus.Consumer(setupCtx, ReceiptStream, ReceiptConsumer)
	cancel()
	if err != nil {
		return fmt.Errorf("receipt consumer: %w", err)
	}
	return consumeBatches(ctx, cons, receiptBatch, d.applyReceipts)
}

// consumeBatches feeds a consumer's messages to apply in batches: it takes
// one, then whatever else has already arrived, up to max. It returns when
// ctx ends (nil) or the consumption ends for good (an error, so that the
// supervisor starts it again).
func consumeBatches(ctx context.Context, cons jetstream.Consumer, max int, apply func(context.Context, []jetstream.Msg)) error {
	msgs := make(chan jetstream.Msg, max)
	var consumeErr error
	var mu sync.Mutex
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(max), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		mu.Lock()
		consumeErr = err
		mu.Unlock()
	}))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer cc.Stop()
	batch := make([]jetstream.Msg, 0, max)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cc.Closed():
			mu.Lock()
			defer mu.Unlock()
			return fmt.Errorf("consumer closed: %w", errors.Join(consumeErr, errors.New("consumption ended")))
		case m := <-msgs:
			batch = append(batch[:0], m)
		}
	fill:
		for len(batch) < max {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		apply(ctx, batch)
	}
}

// applyReceipts applies one batch. Each provider's receipts pass its rate
// limit first (those over it are sent back to wait for their slot); what
// cannot be read as a receipt, too large or not JSON, goes to the domain
// as refused, so it is audited like any other refusal.
func (d *Dispatcher) applyReceipts(ctx context.Context, msgs []jetstream.Msg) {
	receipts := make([]tocsin.ProviderReceipt, 0, len(msgs))
	taken := make([]jetstream.Msg, 0, len(msgs))
	var oldest time.Time
	now := time.Now()
	if d.limiter == nil {
		d.limiter = newReceiptLimiter(d.Bus.limits())
	}
	d.limiter.forget(now)
	for _, msg := range msgs {
		provider := strings.TrimPrefix(msg.Subject(), ReceiptPrefix)
		meta, err := msg.Metadata()
		if err != nil {
			d.Log.Warn("receipt without JetStream metadata dropped", slog.String("provider", provider), slog.Any("error", err))
			_ = msg.Term()
			continue
		}
		if wait, ok := d.limiter.take(provider, meta.Sequence.Stream, now); !ok {
			d.overRate(provider, now)
			_ = msg.NakWithDelay(wait)
			continue
		}
		pr := tocsin.ProviderReceipt{Provider: provider}
		if n := len(msg.Data()); n > tocsin.MaxReceiptBytes {
			pr.Refused = tocsin.Errorf(tocsin.CodeValidation, "a receipt of %d bytes; at most %d are taken", n, tocsin.MaxReceiptBytes)
		} else if err := json.Unmarshal(msg.Data(), &pr.Receipt); err != nil {
			pr.Refused = tocsin.Errorf(tocsin.CodeValidation, "not a receipt: %v", err)
		}
		if oldest.IsZero() || meta.Timestamp.Before(oldest) {
			oldest = meta.Timestamp
		}
		receipts = append(receipts, pr)
		taken = append(taken, msg)
	}
	if len(receipts) == 0 {
		return
	}
	d.mu.Lock()
	d.receiptsHead = oldest
	d.mu.Unlock()
	applied, err := d.Service.ApplyReceipts(ctx, receipts)
	if err != nil {
		// Nothing was recorded (the store could not commit): all come back.
		d.Log.Warn("receipts not applied; they will be redelivered", slog.Int("count", len(receipts)), slog.Any("error", err))
		for _, msg := range taken {
			_ = msg.NakWithDelay(time.Second)
		}
		return
	}
	d.mu.Lock()
	d.receiptsHead = time.Time{}
	d.mu.Unlock()
	now = time.Now()
	for i, a := range applied {
		pr := receipts[i]
		if a.Err != nil {
			// Audited in the domain; logged at warning level once a
			// minute per provider, so that a flood does not flood the log.
			level := slog.LevelDebug
			if now.Sub(d.refusedLogged[pr.Provider]) >= time.Minute {
				if d.refusedLogged == nil {
					d.refusedLogged = map[string]time.Time{}
				}
				d.refusedLogged[pr.Provider], level = now, slog.LevelWarn
			}
			d.Log.Log(ctx, level, "receipt refused", slog.String("provider", pr.Provider),
				slog.String("broadcast", pr.Receipt.BroadcastID), slog.Any("error", a.Err))
			_ = taken[i].Term()
			continue
		}
		d.seen(pr.Provider, now)
		if d.Hooks.Receipt != nil {
			d.Hooks.Receipt(pr.Provider, tocsin.DeliveryStatus(pr.Receipt.Status))
		}
		if a.FirstAfter > 0 && d.Hooks.Received != nil {
			d.Hooks.Received(pr.Provider, a.FirstAfter)
		}
		_ = taken[i].Ack()
	}
}

// deadLetterLoop reads JetStream's max-deliveries advisories from the
// stream that keeps them: the provider's progress on that broadcast
// becomes failed, with the reason. Advisories sent while the coordinator
// was away wait in the stream.
func (d *Dispatcher) deadLetterLoop(ctx context.Context) error {
	if err := setupTimed(ctx, d.Bus.EnsureDeadLetters); err != nil {
		return fmt.Errorf("set up dead-letter stream: %w", err)
	}
	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	cons, err := d.Bus.Consumer(setupCtx, DeadLetterStream, DeadLetterConsumer)
	cancel()
	if err != nil {
		return fmt.Errorf("dead-letter consumer: %w", err)
	}
	return consumeBatches(ctx, cons, 64, func(ctx context.Context, msgs []jetstream.Msg) {
		for _, m := range msgs {
			if err := d.deadLetter(ctx, m.Data()); err != nil {
				d.Log.Warn("dead letter not recorded yet; will retry", slog.Any("error", err))
				_ = m.NakWithDelay(time.Second)
				continue
			}
			_ = m.Ack()
		}
	})
}

// deadLetter records one max-deliveries advisory.
func (d *Dispatcher) deadLetter(ctx context.Context, data []byte) error {
	var adv struct {
		Consumer   string `json:"consumer"`
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(data, &adv); err != nil {
		d.Log.Warn("malformed advisory dropped", slog.Any("error", err))
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	stream, err := d.Bus.js.Stream(ctx, DispatchStream)
	if err != nil {
		return fmt.Errorf("dead letter: stream: %w", err)
	}
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		d.Log.Warn("dead letter for a message no longer in the stream", slog.String("provider", adv.Consumer), slog.Uint64("seq", adv.StreamSeq))
		return nil
	} else if err != nil {
		return fmt.Errorf("dead letter: message %d: %w", adv.StreamSeq, err)
	}
	id := raw.Header.Get(HeaderBroadcastID)
	reason := fmt.Sprintf("not acknowledged after %d deliveries", adv.Deliveries)
	return d.markUndeliverable(ctx, adv.Consumer, id, reason)
}

func (d *Dispatcher) markUndeliverable(ctx context.Context, provider, broadcast, reason string) error {
	if err := d.Service.MarkUndeliverable(ctx, provider, broadcast, reason); err != nil {
		return fmt.Errorf("dead letter: record: %w", err)
	}
	d.Log.Warn("dead letter", slog.String("provider", provider), slog.String("broadcast", broadcast), slog.String("reason", reason))
	if d.Hooks.DeadLetter != nil {
		d.Hooks.DeadLetter(provider)
	}
	return nil
}

// Reconciliation of dispatches no advisory told us about: one still queued
// long after JetStream would have given up on it, for a provider whose
// consumer has nothing left to deliver, will never be received.
const (
	reconcileEvery = time.Minute
	givenUpAfter   = maxDeliver*providerAckWait + time.Minute
)

// reconcileLoop checks, at start and then every minute, for dispatches
// that were published, never received, and that JetStream no longer holds
// for delivery: their dead-letter advisory was lost (the stream that keeps
// them did not exist yet, or was lost with its node).
func (d *Dispatcher) reconcileLoop(ctx context.Context) error {
	for {
		if err := d.reconcile(ctx); err != nil && ctx.Err() == nil {
			d.Log.Warn("dead-letter reconciliation failed; will retry", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cmp.Or(d.ReconcileEvery, reconcileEvery)):
		}
	}
}

func (d *Dispatcher) reconcile(ctx context.Context) error {
	giveUp := cmp.Or(d.GiveUpAfter, givenUpAfter)
	stale, err := d.Service.QueuedBefore(ctx, d.Service.Clock.Now().Add(-giveUp))
	if err != nil || len(stale) == 0 {
		return err
	}
	// Anything still in the outbox has not been published yet: wait for
	// the relay. A held provider's dispatches stay there until it is
	// released, so they are not waited for: that provider is passed over,
	// and the others reconciled.
	held := d.heldNow()
	var unpublished []tocsin.OutboxMessage
	err = d.Service.Store.View(ctx, func(tx tocsin.ReadTx) error {
		var err error
		unpublished, err = tx.OutboxExcept(1, held, nil)
		return err
	})
	if err != nil || len(unpublished) > 0 {
		return err
	}
	var failed []error
	for provider, ids := range stale {
		if held[provider] {
			continue
		}
		reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
		c, err := d.Bus.js.Consumer(reqCtx, DispatchStream, provider)
		cancel()
		if err != nil {
			failed = append(failed, fmt.Errorf("consumer %s: %w", provider, err))
			continue
		}
		info := c.CachedInfo()
		if info.NumPending > 0 || info.NumAckPending > 0 {
			continue // still deliverable: the provider is behind, not failed
		}
		for _, id := range ids {
			reason := fmt.Sprintf("no receipt within %s and nothing left to deliver to the provider (dead letter, or its receipts were lost)", giveUp)
			if err := d.markUndeliverable(ctx, provider, id, reason); err != nil {
				return err
			}
		}
	}
	return errors.Join(failed...)
}

// overRate logs, at most once a minute per provider, that a provider's
// receipts are over its rate and are being slowed.
func (d *Dispatcher) overRate(provider string, now time.Time) {
	if d.Hooks.ReceiptOverRate != nil {
		d.Hooks.ReceiptOverRate(provider)
	}
	if now.Sub(d.overRateLogged[provider]) < time.Minute {
		return
	}
	if d.overRateLogged == nil {
		d.overRateLogged = map[string]time.Time{}
	}
	d.overRateLogged[provider] = now
	d.Log.Warn("provider's receipts are over its rate; they wait for their turn", slog.String("provider", provider),
		slog.Float64("per_second", d.limiter.rate()), slog.Duration("longest_wait", maxReceiptWait))
}

func (d *Dispatcher) seen(provider string, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.After(d.lastSeen[provider]) {
		d.lastSeen[provider] = t
	}
}

// activityEvery is how often, by default, the activity loop reads the
// consumer list.
// The read is not free for the server: at 303 consumers it costs about
// 12 ms of CPU (10 ms of it nats-server's, building each consumer's
// info), and polled every 5 s it was the slowest of Tocsin's one-at-a-time
// filings (tocsin bench: latency p99 8–11 ms against 4–6 ms without it),
// the filings in flight waiting for the cores. A provider that receives
// is seen at each receipt anyway; the list is for one that only pulls.
const activityEvery = 30 * time.Second

// activityLoop polls the providers' consumers, so a provider that pulls
// but has had nothing to receive still shows as alive. A failed poll is
// logged when polls start failing and when they work again (JetStream
// not answering is readiness's to report, every time it is asked).
func (d *Dispatcher) activityLoop(ctx context.Context) error {
	tick := time.NewTicker(cmp.Or(d.ActivityEvery, activityEvery))
	defer tick.Stop()
	failing := false
	for {
		reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
		activity, err := d.Bus.ConsumersActivity(reqCtx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			d.Log.Warn("provider activity cannot be read; last-seen times stand still", slog.Any("error", err))
		case err == nil && failing:
			failing = false
			d.Log.Info("provider activity read again")
		}
		// What was read counts, a partial list too: a provider's consumer
		// is named after it.
		for provider, a := range activity {
			last := a.Last
			if a.Pulling {
				last = time.Now()
			}
			if !last.IsZero() {
				d.seen(provider, last)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
