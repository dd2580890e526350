package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names fixed by Tocsin's NATS contract.
const (
	DispatchStream = "TOCSIN_DISPATCH"
	ReceiptPrefix  = "tocsin.receipt."
)

// Config says how to reach Tocsin.
type Config struct {
	URL      string
	ID       string // the provider id: also the consumer's name
	User     string
	Password string
	Log      *slog.Logger
}

// Handler sends one dispatch to the public. It reports progress through r
// and returns when done; ctx is cancelled if Tocsin stops the broadcast.
// An error is reported to Tocsin as a failed receipt.
type Handler func(ctx context.Context, d Dispatch, r *Reporter) error

// Client is a provider's connection to Tocsin.
type Client struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger

	mu      sync.Mutex
	handled map[string]bool               // guarded by mu: broadcast ids taken on
	stopped map[string]bool               // guarded by mu: broadcast ids stopped
	running map[string]context.CancelFunc // guarded by mu: in-flight sends
	wg      sync.WaitGroup
}

// Connect connects to NATS; it keeps reconnecting through outages.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.ID == "" {
		return nil, errors.New("provider: Config.ID is required")
	}
	if cfg.User == "" {
		cfg.User = cfg.ID
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	nc, err := nats.Connect(cfg.URL,
		nats.UserInfo(cfg.User, cfg.Password),
		nats.Name("tocsin-provider-"+cfg.ID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.RetryOnFailedConnect(true),
	)
	if err != nil {
		return nil, fmt.Errorf("provider %s: connect: %w", cfg.ID, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("provider %s: %w", cfg.ID, err)
	}
	return &Client{
		cfg: cfg, nc: nc, js: js, log: log.With(slog.String("provider", cfg.ID)),
		handled: map[string]bool{}, stopped: map[string]bool{}, running: map[string]context.CancelFunc{},
	}, nil
}

// Close waits for in-flight sends and closes the connection.
func (c *Client) Close() {
	c.wg.Wait()
	_ = c.nc.Drain()
}

// Run pulls dispatches until ctx ends, calling h for each broadcast once.
func (c *Client) Run(ctx context.Context, h Handler) error {
	var cons jetstream.Consumer
	for {
		var err error
		if cons, err = c.js.Consumer(ctx, DispatchStream, c.cfg.ID); err == nil {
			break
		}
		c.log.Warn("consumer not reachable yet", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { c.receive(ctx, m, h) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.Debug("consume", slog.Any("error", err))
		}))
	if err != nil {
		return fmt.Errorf("provider %s: consume: %w", c.cfg.ID, err)
	}
	<-ctx.Done()
	cc.Stop()
	c.mu.Lock()
	for _, cancel := range c.running {
		cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// receive handles one message. It acks only after the outcome is safe: a
// received receipt published, or the message recognised as a duplicate or
// a stop.
func (c *Client) receive(ctx context.Context, m jetstream.Msg, h Handler) {
	var d Dispatch
	if err := json.Unmarshal(m.Data(), &d); err != nil || d.BroadcastID == "" {
		c.log.Warn("malformed dispatch terminated", slog.Any("error", err))
		_ = m.Term()
		return
	}
	if d.Type == TypeStop {
		target := d.References
		if target == "" {
			target = d.BroadcastID
		}
		c.mu.Lock()
		c.stopped[target] = true
		if cancel := c.running[target]; cancel != nil {
			cancel()
		}
		c.mu.Unlock()
		c.log.Info("stop", slog.String("broadcast", target))
		_ = m.Ack()
		return
	}
	c.mu.Lock()
	dup, stopped := c.handled[d.BroadcastID], c.stopped[d.BroadcastID]
	if !dup && !stopped {
		c.handled[d.BroadcastID] = true
	}
	c.mu.Unlock()
	if dup || stopped {
		_ = m.Ack() // a redelivery, or overtaken by its stop
		return
	}
	r := &Reporter{c: c, id: d.BroadcastID}
	if meta, err := m.Metadata(); err == nil {
		r.seq = meta.Sequence.Stream
	}
	if err := r.send(ctx, Receipt{Status: StatusReceived}); err != nil {
		c.mu.Lock()
		delete(c.handled, d.BroadcastID)
		c.mu.Unlock()
		c.log.Warn("could not confirm receipt; will be redelivered", slog.Any("error", err))
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()

	sendCtx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.running[d.BroadcastID] = cancel
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.running, d.BroadcastID)
			c.mu.Unlock()
			cancel()
		}()
		err := h(sendCtx, d, r)
		switch {
		case err == nil:
		case sendCtx.Err() != nil && ctx.Err() == nil:
			_ = r.send(context.WithoutCancel(ctx), Receipt{Status: StatusFailed, Sent: r.last.Sent, Delivered: r.last.Delivered,
				Failed: r.last.Failed, Recipients: r.last.Recipients, Detail: "stopped by Tocsin"})
		default:
			// Forget it, so that Tocsin's re-send of a failed broadcast
			// (a new message) is taken on rather than dropped.
			c.mu.Lock()
			delete(c.handled, d.BroadcastID)
			c.mu.Unlock()
			_ = r.send(context.WithoutCancel(ctx), Receipt{Status: StatusFailed, Sent: r.last.Sent, Delivered: r.last.Delivered,
				Failed: r.last.Failed, Recipients: r.last.Recipients, Detail: err.Error()})
		}
	}()
}

// Reporter publishes receipts for one broadcast.
type Reporter struct {
	c    *Client
	id   string
	seq  uint64 // the dispatch's stream sequence: a re-send has a new one
	last Receipt
}

// Progress reports that sending is under way.
func (r *Reporter) Progress(ctx context.Context, recipients, sent, delivered, failed int) error {
	return r.send(ctx, Receipt{Status: StatusSending, Recipients: recipients, Sent: sent, Delivered: delivered, Failed: failed})
}

// Done reports that sending finished.
func (r *Reporter) Done(ctx context.Context, recipients, sent, delivered, failed int, detail string) error {
	return r.send(ctx, Receipt{Status: StatusDelivered, Recipients: recipients, Sent: sent, Delivered: delivered, Failed: failed, Detail: detail})
}

// send publishes a receipt and waits for JetStream to store it.
func (r *Reporter) send(ctx context.Context, rc Receipt) error {
	rc.BroadcastID = r.id
	data, err := json.Marshal(rc)
	if err != nil {
		return err
	}
	// TOCSIN_RECEIPTS deduplicates across all providers' subjects, so the
	// id names the provider (two providers reporting the same counts for
	// the same broadcast are two receipts, not one) and the dispatch (a
	// re-send's receipts are new, a redelivery's are not).
	msgID := fmt.Sprintf("%s.%s.%d.%s.%d.%d.%d", r.c.cfg.ID, r.id, r.seq, rc.Status, rc.Sent, rc.Delivered, rc.Failed)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.c.js.Publish(ctx, ReceiptPrefix+r.c.cfg.ID, data, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("provider %s: receipt for %s: %w", r.c.cfg.ID, r.id, err)
	}
	r.last = rc
	return nil
}
