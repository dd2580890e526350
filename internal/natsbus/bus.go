package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
}

// Connect connects to NATS as the coordinator. It keeps reconnecting for
// ever: an outage delays dispatch, it never loses it.
func Connect(url string, log *slog.Logger, replicas int, opts ...nats.Option) (*Bus, error) {
	if replicas < 1 {
		replicas = 1
	}
	opts = append([]nats.Option{
		nats.Name("tocsin-coordinator"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", slog.String("url", nc.ConnectedUrlRedacted())) }),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	return &Bus{nc: nc, js: js, log: log, replicas: replicas}, nil
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
		},
		{
			Name: ReceiptStream, Subjects: []string{ReceiptPrefix + ">"},
			Description: "Receipts from SMS providers",
			Storage:     jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			MaxAge: streamMaxAge, Duplicates: dedupWindow, Replicas: b.replicas,
		},
	} {
		if _, err := b.js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("nats: stream %s: %w", cfg.Name, err)
		}
	}
	_, err := b.js.CreateOrUpdateConsumer(ctx, ReceiptStream, jetstream.ConsumerConfig{
		Durable: ReceiptConsumer, Description: "The coordinator's receipt reader",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy, Replicas: b.replicas,
	})
	if err != nil {
		return fmt.Errorf("nats: receipt consumer: %w", err)
	}
	return nil
}

// EnsureProviderConsumer creates or updates the durable pull consumer a
// provider reads its dispatches from. It is named with the provider id and
// sees only that provider's subject.
func (b *Bus) EnsureProviderConsumer(ctx context.Context, provider string) error {
	_, err := b.js.CreateOrUpdateConsumer(ctx, DispatchStream, jetstream.ConsumerConfig{
		Durable: provider, Description: "Dispatches for provider " + provider,
		FilterSubject: DispatchSubject(provider),
		AckPolicy:     jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: maxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy, Replicas: b.replicas,
	})
	if err != nil {
		return fmt.Errorf("nats: consumer for %s: %w", provider, err)
	}
	return nil
}

// ProviderActivity returns when the provider's consumer last delivered or
// was acknowledged, and whether a pull is waiting now.
func (b *Bus) ProviderActivity(ctx context.Context, provider string) (last time.Time, pulling bool, err error) {
	c, err := b.js.Consumer(ctx, DispatchStream, provider)
	if err != nil {
		return last, false, err
	}
	info := c.CachedInfo()
	for _, t := range []*time.Time{info.Delivered.Last, info.AckFloor.Last} {
		if t != nil && t.After(last) {
			last = *t
		}
	}
	return last, info.NumWaiting > 0, nil
}

// dispatchMsg builds the NATS message for an outbox entry.
func dispatchMsg(m tocsin.OutboxMessage) (*nats.Msg, error) {
	data, err := json.Marshal(m.Dispatch)
	if err != nil {
		return nil, fmt.Errorf("encode dispatch %s: %w", m.MsgID, err)
	}
	msg := nats.NewMsg(DispatchSubject(m.Provider))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, m.MsgID)
	msg.Header.Set(HeaderBroadcastID, m.Dispatch.BroadcastID)
	msg.Header.Set(HeaderType, m.Dispatch.Type)
	return msg, nil
}

// errNotConnected is returned while the connection is down.
var errNotConnected = errors.New("nats: not connected")
