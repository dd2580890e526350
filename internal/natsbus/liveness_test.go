package natsbus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/supervise"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// startSupervised runs the dispatcher's loops under one supervisor as the
// coordinator does, with the embedded server's JetStream keeper if asked:
// the keeper restarts a stopped server within a second, which a test of
// an outage it makes itself does not want.
func (c *coordinator) startSupervised(t *testing.T, keepJetStream bool) (*natsbus.Dispatcher, *supervise.Supervisor) {
	t.Helper()
	d := natsbus.NewDispatcher(c.bus, c.svc, c.log)
	c.svc.Published = d.Kick
	sup := &supervise.Supervisor{Log: c.log, MaxBackoff: 500 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx, sup)
	if keepJetStream {
		sup.Go(ctx, "nats-jetstream", c.embedded.KeepJetStream)
	}
	t.Cleanup(func() { cancel(); sup.Wait() })
	return d, sup
}

func (c *coordinator) outbox(t *testing.T) []tocsin.OutboxMessage {
	t.Helper()
	var msgs []tocsin.OutboxMessage
	err := c.store.View(testContext(t), func(tx tocsin.ReadTx) error {
		var err error
		msgs, err = tx.Outbox(100)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// A dispatch whose Nats-Msg-Id JetStream already holds for another message
// (a fresh data folder on an old stream, a restored tocsin.db) is not lost
// as a duplicate: it is sent again under a fresh id.
func TestDuplicateIDOfAnotherMessageIsResent(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, raw)
	b := c.fileEmergency(t, "440100")
	pending := c.outbox(t)
	if len(pending) != 1 {
		t.Fatalf("outbox holds %d messages, want 1", len(pending))
	}
	ctx := testContext(t)
	impostor := nats.NewMsg(natsbus.DispatchSubject(raw.ID))
	impostor.Data = []byte(`{"broadcast_id":"BC000001","type":"broadcast","content":"an older broadcast"}`)
	impostor.Header.Set(jetstream.MsgIDHeader, pending[0].MsgID)
	if _, err := c.bus.JetStream().PublishMsg(ctx, impostor); err != nil {
		t.Fatal(err)
	}

	d := natsbus.NewDispatcher(c.bus, c.svc, c.log)
	var dups atomic.Int32
	d.Hooks.DuplicateAck = func() { dups.Add(1) }
	c.svc.Published = d.Kick
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "the outbox to drain", func() (bool, error) { return c.outboxLen(t) == 0, nil })
	msgs := fetch(t, providerJS(t, c, raw.ID), raw.ID, 3, 2*time.Second)
	if len(msgs) != 2 {
		t.Fatalf("raw received %d messages, want the impostor and the real dispatch", len(msgs))
	}
	real := msgs[1]
	if got := real.Headers().Get(natsbus.HeaderBroadcastID); got != b.ID {
		t.Errorf("second message is for %q, want %s", got, b.ID)
	}
	if id := real.Headers().Get(jetstream.MsgIDHeader); id == pending[0].MsgID {
		t.Errorf("the dispatch went out under the colliding id %s", id)
	}
	if dups.Load() != 1 {
		t.Errorf("duplicate acks counted %d times, want 1", dups.Load())
	}
}

// nats-server switches JetStream off when its store cannot write, and
// leaves it off: the coordinator must say so, and bring it back.
func TestJetStreamSwitchedOffIsReportedAndRecovered(t *testing.T) {
	c := newCoordinator(t, raw)
	d, sup := c.startSupervised(t, true)
	ctx := testContext(t)
	c.fileEmergency(t, "440100")
	waitFor(t, "the first dispatch to be published", func() (bool, error) { return c.outboxLen(t) == 0, nil })
	waitFor(t, "readiness", func() (bool, error) { return len(d.Problems(ctx))+len(sup.Down()) == 0, nil })

	if err := c.embedded.SwitchOffJetStream(); err != nil {
		t.Fatal(err)
	}
	off := time.Now()
	c.fileEmergency(t, "440100")
	// The keeper restarts JetStream within a second or two; what must
	// never happen is an outbox left waiting with nothing said about it.
	sawProblem := false
	waitFor(t, "the dispatch filed while JetStream was off to be published", func() (bool, error) {
		if len(d.Problems(ctx)) > 0 {
			sawProblem = true
		}
		return c.outboxLen(t) == 0, nil
	})
	recovered := time.Since(off)
	t.Logf("published %s after JetStream was switched off (problem reported: %v)", recovered.Round(time.Millisecond), sawProblem)
	if recovered > 10*time.Second {
		t.Errorf("recovery took %s, want under 10 s", recovered)
	}
	if err := c.embedded.JetStreamOn(); err != nil {
		t.Error(err)
	}
	waitFor(t, "readiness again", func() (bool, error) { return len(d.Problems(ctx))+len(sup.Down()) == 0, nil })
	if n := len(fetch(t, providerJS(t, c, raw.ID), raw.ID, 3, 2*time.Second)); n != 2 {
		t.Errorf("raw received %d dispatches, want 2", n)
	}
}

// The first wave's worst failure: the dispatcher failed once at start on a
// transient NATS error and never ran again. Now it runs as soon as NATS
// answers, and says it is down until then.
func TestDispatcherStartsOnceNATSAnswers(t *testing.T) {
	c := newCoordinator(t, raw)
	c.embedded.Stop()
	c.fileEmergency(t, "440100")
	d, sup := c.startSupervised(t, false)
	ctx := testContext(t)
	waitFor(t, "readiness to report the outage", func() (bool, error) { return len(d.Problems(ctx)) > 0, nil })
	if c.outboxLen(t) != 1 {
		t.Fatal("the dispatch left the outbox while NATS was down")
	}
	if err := c.embedded.Restart(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitFor(t, "the dispatch to be published", func() (bool, error) { return c.outboxLen(t) == 0, nil })
	// Within seconds of NATS answering, not after any loop has sat out
	// a setup deadline.
	if took := time.Since(back); took > 10*time.Second {
		t.Errorf("published %s after NATS was back, want under 10 s", took.Round(time.Millisecond))
	}
	waitFor(t, "readiness", func() (bool, error) { return len(d.Problems(ctx))+len(sup.Down()) == 0, nil })
	if n := len(fetch(t, providerJS(t, c, raw.ID), raw.ID, 2, 2*time.Second)); n != 1 {
		t.Errorf("raw received %d dispatches, want 1", n)
	}
}

// startReconciling runs a dispatcher that gives up on a dispatch after
// half a second and reconciles ten times a second.
func (c *coordinator) startReconciling(t *testing.T) {
	c.startDispatcher(t, func(d *natsbus.Dispatcher) {
		d.GiveUpAfter, d.ReconcileEvery = 500*time.Millisecond, 100*time.Millisecond
	})
}

// takeWithoutReceipt has provider take its next dispatch and acknowledge
// it, and send no receipt for it.
func (c *coordinator) takeWithoutReceipt(t *testing.T, provider string) {
	t.Helper()
	msg := fetchOne(t, providerJS(t, c, provider), provider)
	if err := msg.DoubleAck(testContext(t)); err != nil {
		t.Fatal(err)
	}
}

// A dispatch JetStream gave up on while no advisory reached the
// coordinator (or whose receipts were lost) does not stay queued for
// ever: once the provider's consumer has nothing left to deliver, it is
// marked failed, where the regulator sees it and can re-send. One the
// provider has not yet pulled stays queued.
func TestReconciliationFailsWhatNothingWillDeliver(t *testing.T) {
	c := newCoordinator(t, raw, cucc)
	c.startReconciling(t)
	b := c.fileEmergency(t, "440100")
	waitFor(t, "the dispatches to be published", func() (bool, error) { return c.outboxLen(t) == 0, nil })
	// raw takes its dispatch and its receipt never arrives; cucc is not
	// pulling at all.
	c.takeWithoutReceipt(t, raw.ID)
	progress := func(provider string) tocsin.ProviderProgress {
		got, err := c.svc.Get(testContext(t), admin, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range got.Providers {
			if p.Provider == provider {
				return p
			}
		}
		t.Fatalf("no progress for %s", provider)
		return tocsin.ProviderProgress{}
	}
	waitFor(t, "raw's dispatch to be reconciled as failed", func() (bool, error) {
		return progress(raw.ID).Status == tocsin.DeliveryFailed, nil
	})
	if p := progress(raw.ID); !strings.Contains(p.Detail, "no receipt") {
		t.Errorf("raw failed with %q, want the reason", p.Detail)
	}
	if p := progress(cucc.ID); p.Status != tocsin.DeliveryQueued {
		t.Errorf("cucc, which has not pulled yet, is %s; want queued", p.Status)
	}
}

// A disabled provider's dispatches wait in the outbox until it is enabled
// again; they must not keep every other provider's lost dispatches from
// being reconciled.
func TestReconciliationPassesOverHeldProviders(t *testing.T) {
	c := newCoordinator(t, raw, cucc)
	if err := c.registry.SetDisabled(testContext(t), cucc.ID, true); err != nil {
		t.Fatal(err)
	}
	c.startReconciling(t)
	b := c.fileEmergency(t, "440100")
	waitFor(t, "raw's dispatch to be published", func() (bool, error) { return c.outboxLen(t) == 1, nil })
	c.takeWithoutReceipt(t, raw.ID)
	waitFor(t, "raw's dispatch to be reconciled as failed, cucc's held", func() (bool, error) {
		got, err := c.svc.Get(testContext(t), admin, b.ID)
		if err != nil {
			return false, err
		}
		return hasProgress(got, raw.ID, tocsin.DeliveryFailed) && hasProgress(got, cucc.ID, tocsin.DeliveryQueued), nil
	})
	if n := c.outboxLen(t); n != 1 {
		t.Errorf("outbox holds %d, want cucc's dispatch", n)
	}
}

// In a cluster, nats-server now and then answers none of several identical
// stream or consumer requests made at once (see Bus.assetRequest), and the
// relay, the receipts loop and the dead-letter loop ensure theirs together
// as they start. Each must have its streams within a few asks, not after
// waiting out its setup deadline. Every round creates the streams anew,
// the case that loses answers.
func TestEnsureAtOnceInACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node NATS cluster")
	}
	urls := testkit.MustNATSCluster(t)
	bus, err := natsbus.Connect(strings.Join(urls, ","), testkit.Logger(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	loops := map[string]func(ctx context.Context) error{
		"relay": func(ctx context.Context) error {
			if err := bus.EnsureStreams(ctx); err != nil {
				return err
			}
			return bus.EnsureProviderConsumer(ctx, "cmcc")
		},
		"receipts": func(ctx context.Context) error {
			if err := bus.EnsureStreams(ctx); err != nil {
				return err
			}
			_, err := bus.Consumer(ctx, natsbus.ReceiptStream, natsbus.ReceiptConsumer)
			return err
		},
		"dead letters": func(ctx context.Context) error {
			if err := bus.EnsureDeadLetters(ctx); err != nil {
				return err
			}
			_, err := bus.Consumer(ctx, natsbus.DeadLetterStream, natsbus.DeadLetterConsumer)
			return err
		},
	}
	js := bus.JetStream()
	for round := range 5 {
		var wg sync.WaitGroup
		for name, setup := range loops {
			wg.Go(func() {
				// Answered, each request takes milliseconds here. Waiting
				// out an unanswered one (the coordinator's setup gives up
				// after 15 s) fails; asking again a few times does not.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := setup(ctx); err != nil {
					t.Errorf("round %d, %s: %v", round, name, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		ctx := testContext(t)
		for _, stream := range []string{natsbus.DispatchStream, natsbus.ReceiptStream, natsbus.DeadLetterStream} {
			info, err := js.Stream(ctx, stream)
			if err != nil {
				t.Fatalf("round %d: %s: %v", round, stream, err)
			}
			if r := info.CachedInfo().Config.Replicas; r != 3 {
				t.Errorf("round %d: %s has %d replicas, want 3", round, stream, r)
			}
			// A lone request can lose its answer on a fresh cluster too:
			// asked again, as the Bus does.
			for {
				attempt, cancel := context.WithTimeout(ctx, 3*time.Second)
				err := js.DeleteStream(attempt, stream)
				cancel()
				if err == nil || !natsbus.Unanswered(err) || ctx.Err() != nil {
					if err != nil {
						t.Fatalf("round %d: delete %s: %v", round, stream, err)
					}
					break
				}
			}
		}
	}
}

// Two questions about a failure. Was it unanswered? Then a stream or
// consumer request is asked again; one JetStream answered, even with an
// error, is not. Was it the stream's absence (no leader to take the
// publish, no connection)? Only then does the relay probe one message at
// a time: a failure of one message must not hold up all others.
func TestFailureKinds(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		err                      error
		unanswered, streamAbsent bool
	}{
		{"the try's deadline", fmt.Errorf("stream X: %w", context.DeadlineExceeded), true, false},
		{"the client's timeout", nats.ErrTimeout, true, false},
		{"no responders", fmt.Errorf("atomic batch B: commit: %w", nats.ErrNoResponders), true, true},
		{"no stream leader", fmt.Errorf("publish X: %w", jetstream.ErrNoStreamResponse), false, true},
		{"not connected", natsbus.ErrNotConnected, false, true},
		{"JetStream not up yet", jetstream.ErrJetStreamNotEnabled, true, false},
		{"no meta leader yet", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true, false},
		{"peers not known yet", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement"}, true, false},
		{"one acknowledgement timed out", fmt.Errorf("publish X: %w", jetstream.ErrAsyncPublishTimeout), false, false},
		{"a config JetStream refuses", &jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use with a different configuration"}, false, false},
		{"a message JetStream refuses", &jetstream.APIError{Code: 400, ErrorCode: 10054, Description: "message size exceeds maximum allowed"}, false, false},
		{"the caller giving up", context.Canceled, false, false},
		{"the connection closed", nats.ErrConnectionClosed, false, false},
	} {
		if got := natsbus.Unanswered(tc.err); got != tc.unanswered {
			t.Errorf("%s (%v): unanswered %v, want %v", tc.name, tc.err, got, tc.unanswered)
		}
		if got := natsbus.StreamAbsent(tc.err); got != tc.streamAbsent {
			t.Errorf("%s (%v): stream absent %v, want %v", tc.name, tc.err, got, tc.streamAbsent)
		}
	}
}
