package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Retention of the JetStream streams. The store keeps the records for the
// five months Article 11 asks; the streams only carry messages, long enough
// for a provider that was offline for weeks to catch up.
const (
	streamMaxAge = 30 * 24 * time.Hour
	// dedupWindow is how long JetStream remembers a Nats-Msg-Id. The relay
	// republishes what it had not marked done after a crash, within seconds.
	dedupWindow = time.Hour
	// maxDeliver bounds redeliveries of a dispatch before it is a dead
	// letter and the provider's progress is marked failed.
	maxDeliver = 10
	ackWait    = 30 * time.Second
	// providerAckWait is how long a provider has to acknowledge a
	// dispatch before it is delivered again. Providers acknowledge once
	// they have confirmed receipt (milliseconds), not after sending; a
	// delivery whose acknowledgement was lost (the provider or the server
	// restarting in between) waits this long, so it is short.
	providerAckWait = 10 * time.Second

	// publishAckWait bounds the wait for each publish's acknowledgement; an
	// unacknowledged publish is retried with the same Nats-Msg-Id.
	publishAckWait = 5 * time.Second
	// requestTimeout bounds every JetStream API request that has no
	// deadline of its own.
	requestTimeout = 5 * time.Second
	// assetAttempt bounds one request to create, update or look up a
	// stream or consumer; assetRequest sends one unanswered in that time
	// again (see there).
	assetAttempt = 3 * time.Second
)

// Dead letters: JetStream announces a dispatch that exhausted its
// deliveries with an advisory. Core NATS would lose the ones sent while
// the coordinator was away, so a stream keeps them until it has read them.
const (
	DeadLetterStream   = "TOCSIN_DEAD_LETTERS"
	DeadLetterConsumer = "tocsin-coordinator"
	deadLetterSubject  = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + DispatchStream + ".*"
)

// Headers on every dispatch, beside Nats-Msg-Id.
const (
	HeaderBroadcastID = "Tocsin-Broadcast-Id"
	HeaderType        = "Tocsin-Type"
)

// Bus is the coordinator's connection to JetStream.
type Bus struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	log      *slog.Logger
	replicas int

	// Limits bound each provider's receipts (the stream's per-subject
	// limit, the coordinator's rate); zero means DefaultProviderLimits.
	// Set before EnsureStreams and the dispatcher's Start.
	Limits ProviderLimits

	mu        sync.Mutex
	downSince time.Time // guarded by mu: when the connection went down, zero while up
	// ensuring holds, by asset, the create-or-update request in flight;
	// guarded by mu (see ensure).
	ensuring map[string]*ensureFlight
}

// ensureFlight is one create-or-update request that callers ensuring the
// same asset at the same time share.
type ensureFlight struct {
	done chan struct{}
	err  error // set before done closes
}

// Connect connects to NATS as the coordinator. It keeps reconnecting for
// ever: an outage delays dispatch, it never loses it.
func Connect(url string, log *slog.Logger, replicas int, opts ...nats.Option) (*Bus, error) {
	if replicas < 1 {
		replicas = 1
	}
	b := &Bus{log: log, replicas: replicas, downSince: time.Now(), ensuring: map[string]*ensureFlight{}}
	opts = append([]nats.Option{
		nats.Name("tocsin-coordinator"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) { b.setDown(false) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.setDown(true)
			if err != nil {
				log.Warn("nats disconnected", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.setDown(false)
			log.Info("nats reconnected", slog.String("url", nc.ConnectedUrlRedacted()))
		}),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: connect %s: %w", url, err)
	}
	if nc.IsConnected() {
		b.setDown(false)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(publishAckWait),
		jetstream.WithDefaultTimeout(requestTimeout),
	)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	b.nc, b.js = nc, js
	return b, nil
}

func (b *Bus) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !down:
		b.downSince = time.Time{}
	case b.downSince.IsZero():
		b.downSince = time.Now()
	}
}

func (b *Bus) limits() ProviderLimits {
	if b.Limits == (ProviderLimits{}) {
		return DefaultProviderLimits
	}
	return b.Limits
}

// DownSince is when the connection went down; zero while it is up.
func (b *Bus) DownSince() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nc != nil && b.nc.IsConnected() {
		return time.Time{}
	}
	if b.downSince.IsZero() {
		return time.Now()
	}
	return b.downSince
}

// CheckJetStream asks JetStream for the account's summary: an answer
// means the JetStream API is serving this account.
func (b *Bus) CheckJetStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("nats: jetstream not answering: %w", err)
	}
	return nil
}

// Close drains and closes the connection.
func (b *Bus) Close() { _ = b.nc.Drain() }

// Connected reports whether the connection is up.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// Conn is the underlying connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// EnsureStreams creates or updates the streams and the coordinator's
// receipt consumer. It is idempotent and run at every start.
func (b *Bus) EnsureStreams(ctx context.Context) error {
	for _, cfg := range []jetstream.StreamConfig{
		{
			Name: DispatchStream, Subjects: []string{DispatchPrefix + ">"},
			Description: "Dispatches to SMS providers, one subject per provider",
			Storage:     jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			MaxAge: streamMaxAge, Duplicates: dedupWindow, Replicas: b.replicas,
			// The relay publishes each round as one atomic batch.
			AllowAtomicPublish: true,
		},
		{
			Name: ReceiptStream, Subjects: []string{ReceiptPrefix + ">"},
			Description: "Receipts from SMS providers",
			Storage:     jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			MaxAge: streamMaxAge, Duplicates: ReceiptDedupWindow, Replicas: b.replicas,
			// Bounded per provider (its own subject) and in all; what a
			// limit pushes out is the oldest, long applied.
			MaxMsgSize: receiptMaxMsgSize, MaxMsgsPerSubject: b.limits().ReceiptBacklog,
		},
	} {
		if err := b.ensureStream(ctx, cfg); err != nil {
			return err
		}
	}
	err := b.ensureConsumer(ctx, ReceiptStream, jetstream.ConsumerConfig{
		Durable: ReceiptConsumer, Description: "The coordinator's receipt reader",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1,
		// Receipts over a provider's rate wait unacknowledged: no limit
		// here, or one provider's waiting receipts would hold up all
		// others' (its backlog is bounded by the stream's per-subject
		// limit instead).
		MaxAckPending: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy, Replicas: b.replicas,
	})
	if err != nil {
		return fmt.Errorf("nats: receipt consumer: %w", err)
	}
	return nil
}

// EnsureDeadLetters creates or updates the stream that keeps
// max-deliveries advisories and the coordinator's consumer of it.
func (b *Bus) EnsureDeadLetters(ctx context.Context) error {
	err := b.ensureStream(ctx, jetstream.StreamConfig{
		Name: DeadLetterStream, Subjects: []string{deadLetterSubject},
		Description: "JetStream's advisories of dispatches that exhausted their deliveries",
		Storage:     jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		MaxAge: streamMaxAge, Replicas: b.replicas,
	})
	if err != nil {
		return err
	}
	err = b.ensureConsumer(ctx, DeadLetterStream, jetstream.ConsumerConfig{
		Durable: DeadLetterConsumer, Description: "The coordinator's dead-letter reader",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy, Replicas: b.replicas,
	})
	if err != nil {
		return fmt.Errorf("nats: dead-letter consumer: %w", err)
	}
	return nil
}

// EnsureProviderConsumer creates or updates the durable pull consumer a
// provider reads its dispatches from. It is named with the provider id and
// sees only that provider's subject.
func (b *Bus) EnsureProviderConsumer(ctx context.Context, provider string) error {
	err := b.ensureConsumer(ctx, DispatchStream, jetstream.ConsumerConfig{
		Durable: provider, Description: "Dispatches for provider " + provider,
		FilterSubject: DispatchSubject(provider),
		AckPolicy:     jetstream.AckExplicitPolicy, AckWait: providerAckWait, MaxDeliver: maxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy, Replicas: b.replicas,
	})
	if err != nil {
		return fmt.Errorf("nats: consumer for %s: %w", provider, err)
	}
	return nil
}

// ensureStream creates or updates a stream.
func (b *Bus) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	err := b.ensure(ctx, "stream "+cfg.Name, func(ctx context.Context) error {
		_, err := b.js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("nats: stream %s: %w", cfg.Name, err)
	}
	return nil
}

// ensureConsumer creates or updates a durable consumer of stream.
func (b *Bus) ensureConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) error {
	return b.ensure(ctx, "consumer "+stream+"/"+cfg.Durable, func(ctx context.Context) error {
		_, err := b.js.CreateOrUpdateConsumer(ctx, stream, cfg)
		return err
	})
}

// Consumer looks up a durable consumer of stream, asking again while
// JetStream does not answer, until ctx ends.
func (b *Bus) Consumer(ctx context.Context, stream, name string) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	err := b.assetRequest(ctx, "consumer "+stream+"/"+name, func(ctx context.Context) error {
		var err error
		cons, err = b.js.Consumer(ctx, stream, name)
		return err
	})
	return cons, err
}

// ensure runs a create-or-update request for an asset (a stream or a
// consumer, named by what), sharing one already in flight for the same
// asset. The relay and the receipts loop both ensure the streams as they
// start, and a clustered nats-server answers neither of two identical
// creates made at once (nats-io/nats-server#3677; here, every time for
// TOCSIN_RECEIPTS in three-node trials). A Bus always asks for the same
// config of an asset, so the shared request does what each caller's
// would. Callers whose shared request failed (perhaps for its leader's
// context ending) share one more.
func (b *Bus) ensure(ctx context.Context, what string, request func(context.Context) error) error {
	shared, err := b.ensureShared(ctx, what, request)
	if err != nil && shared && ctx.Err() == nil {
		_, err = b.ensureShared(ctx, what, request)
	}
	return err
}

// ensureShared leads a request for what, or joins the one in flight and
// reports that it did.
func (b *Bus) ensureShared(ctx context.Context, what string, request func(context.Context) error) (shared bool, err error) {
	b.mu.Lock()
	f, shared := b.ensuring[what]
	if !shared {
		f = &ensureFlight{done: make(chan struct{})}
		b.ensuring[what] = f
	}
	b.mu.Unlock()
	if shared {
		select {
		case <-f.done:
			return true, f.err
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
	// Deferred, so that a panic (the supervisor recovers it) cannot leave
	// later callers waiting on a request that ended.
	f.err = errors.New("nats: the shared request did not finish")
	defer func() {
		b.mu.Lock()
		delete(b.ensuring, what)
		b.mu.Unlock()
		close(f.done)
	}()
	f.err = b.assetRequest(ctx, what, request)
	return false, f.err
}

// assetRequest sends a request about a stream or consumer until JetStream
// answers it or ctx ends, giving each try assetAttempt. A clustered
// nats-server (2.15.2) sometimes never answers one: in three-node trials
// it answered none of three identical CreateOrUpdateStream requests made
// at once (which ensure now shares), and lost a few lone ones on a freshly
// formed cluster; a request sent just before the connection drops is
// never answered either. Waiting out a loop's whole setup deadline on a
// lost answer held dispatch up for 15 s at a time. These requests are
// idempotent (create-or-update, look-up), so one that went unanswered is
// simply sent again; an error JetStream answers with (a config it
// refuses) is returned at once.
func (b *Bus) assetRequest(ctx context.Context, what string, request func(context.Context) error) error {
	if _, bounded := ctx.Deadline(); !bounded {
		// A caller with no deadline of its own (an HTTP request, say)
		// gets a loop's: asked again for ever, a cluster without a
		// quorum would hold it, and whatever it holds, for ever.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, setupTimeout)
		defer cancel()
	}
	pause := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, assetAttempt)
		err := request(attemptCtx)
		cancel()
		if err == nil || ctx.Err() != nil || !unanswered(err) {
			return err
		}
		// Jittered, so that loops that lost their answers together do
		// not ask together again.
		wait := pause/2 + rand.N(pause)
		b.log.Warn("JetStream could not answer yet; asking again",
			slog.String("about", what), slog.Int("attempt", attempt),
			slog.Duration("after", wait), slog.Any("error", err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// unanswered tells an error that says JetStream did not (yet) answer from
// one it answered with.
func unanswered(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return true
	}
	// The meta leader not elected yet, or the cluster's peers not yet
	// known: both pass as a cluster forms.
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == errCodeClusterNotAvailable || api.ErrorCode == errCodeNoSuitablePeers)
}

// JetStream's error codes for a cluster still forming (nats-server's
// JSClusterNotAvailErr and JSClusterNoPeersErrF); the client names neither.
const (
	errCodeClusterNotAvailable jetstream.ErrorCode = 10008
	errCodeNoSuitablePeers     jetstream.ErrorCode = 10005
)

// dispatchMsg builds the NATS message for an outbox entry.
func dispatchMsg(m tocsin.OutboxMessage) *nats.Msg {
	msg := nats.NewMsg(DispatchSubject(m.Provider))
	msg.Data = m.Payload
	msg.Header.Set(jetstream.MsgIDHeader, m.MsgID)
	msg.Header.Set(HeaderBroadcastID, m.BroadcastID)
	msg.Header.Set(HeaderType, m.Type)
	return msg
}

// Activity is what a provider's consumer says of it: when it last
// delivered or had a delivery acknowledged, and whether a pull waits.
type Activity struct {
	Last    time.Time
	Pulling bool
}

// ConsumersActivity returns every dispatch consumer's Activity by
// provider, from the stream's paged consumer list: a stream lookup and one
// request per 256 consumers, instead of one request per provider.
func (b *Bus) ConsumersActivity(ctx context.Context) (map[string]Activity, error) {
	out := map[string]Activity{}
	stream, err := b.js.Stream(ctx, DispatchStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// Not made yet (the relay makes it, at start, or again after
		// JetStream lost it, and says so): no consumers, nobody to see.
		return out, nil
	} else if err != nil {
		return nil, err
	}
	list := stream.ListConsumers(ctx)
	for info := range list.Info() {
		out[info.Name] = activityOf(info)
	}
	if err := list.Err(); err != nil {
		return out, fmt.Errorf("list dispatch consumers: %w", err)
	}
	return out, nil
}

func activityOf(info *jetstream.ConsumerInfo) Activity {
	var a Activity
	for _, t := range []*time.Time{info.Delivered.Last, info.AckFloor.Last} {
		if t != nil && t.After(a.Last) {
			a.Last = *t
		}
	}
	a.Pulling = info.NumWaiting > 0
	return a
}

// errNotConnected is returned while the connection is down.
var errNotConnected = errors.New("nats: not connected")
