package provider

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Names fixed by Tocsin's NATS contract.
const (
	DispatchStream = "TOCSIN_DISPATCH"
	ReceiptPrefix  = "tocsin.receipt."
)

// Config says how to reach Tocsin.
type Config struct {
	URL string
	ID  string // the provider id: also the consumer's name
	// CredsFile is the path of the NATS credentials file (.creds) Tocsin
	// issued the provider; Creds is its text, for callers that hold it
	// already. One of them is needed.
	CredsFile string
	Creds     string
	Log       *slog.Logger
}

// ErrCredentialsRefused is returned by Run when NATS refuses the
// provider's credentials for good: credentials revoked or rotated, or
// never issued by this Tocsin. Retrying cannot help, so
// the client stops rather than sit connected to nothing.
var ErrCredentialsRefused = errors.New("credentials refused by NATS")

// Handler sends one dispatch to the public. It reports progress through r
// and returns when done; ctx is cancelled if Tocsin stops the broadcast or
// the client shuts down. An error is reported to Tocsin as a failed
// receipt.
type Handler func(ctx context.Context, d Dispatch, r *Reporter) error

// Timings of the connection and the pull loop. Reconnects and consume
// restarts back off exponentially, so an outage of any length is ridden
// out without hammering the server, and the first retry is quick.
const (
	firstRetry      = 250 * time.Millisecond
	maxRetry        = 5 * time.Second
	requestTimeout  = 10 * time.Second // one JetStream API request or publish
	receiptDeadline = 30 * time.Second // all attempts at one receipt
	// pullExpiry bounds a pull request; heartbeats come at half of it, so
	// a consumer that went silent (a server restart that lost it) is
	// noticed within one expiry rather than the client's 30 s default.
	pullExpiry = 10 * time.Second
	// stopWait bounds how long Run waits for a receive callback after
	// stopping a consume: every call inside it has a shorter deadline.
	stopWait = receiptDeadline + 5*time.Second
)

// backoff is the n-th (from 1) pause of a retry loop: doubling from
// firstRetry up to maxRetry, with up to 20% jitter so that many providers
// cut off together do not return together.
func backoff(n int) time.Duration {
	d := maxRetry
	if n < 6 {
		d = min(maxRetry, firstRetry<<max(0, n-1))
	}
	return d + rand.N(d/5+1)
}

// Client is a provider's connection to Tocsin.
type Client struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger

	closed   chan struct{} // closed when the connection is closed for good
	closeErr error         // why; written before closed is closed

	mu       sync.Mutex
	handled  map[string]string             // guarded by mu: broadcast id -> fingerprint of the dispatch taken on
	stopped  map[string]bool               // guarded by mu: broadcast ids stopped
	running  map[string]context.CancelFunc // guarded by mu: in-flight sends
	stopping bool                          // guarded by mu: Run is shutting down; take on nothing new
	// wg counts receive callbacks past their start and the sends they
	// start. Add happens under mu and only while !stopping, so no Add can
	// race the Wait that follows setting stopping.
	wg sync.WaitGroup
}

// Connect connects to NATS. It returns at once, even if the server cannot
// be reached yet: the client keeps connecting and reconnecting, with
// backoff, for as long as it lives, and logs each disconnect and
// reconnect. Only a refusal of its credentials ends that; Run then
// returns an error that wraps ErrCredentialsRefused.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.ID == "" {
		return nil, errors.New("provider: Config.ID is required")
	}
	var auth nats.Option
	switch {
	case cfg.Creds != "":
		userJWT, err := nkeys.ParseDecoratedJWT([]byte(cfg.Creds))
		if err != nil {
			return nil, fmt.Errorf("provider %s: credentials: %w", cfg.ID, err)
		}
		kp, err := nkeys.ParseDecoratedNKey([]byte(cfg.Creds))
		if err != nil {
			return nil, fmt.Errorf("provider %s: credentials: %w", cfg.ID, err)
		}
		auth = nats.UserJWT(func() (string, error) { return userJWT, nil }, kp.Sign)
	case cfg.CredsFile != "":
		auth = nats.UserCredentials(cfg.CredsFile)
	default:
		return nil, errors.New("provider: Config.CredsFile or Config.Creds is required")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	c := &Client{
		cfg: cfg, log: log.With(slog.String("provider", cfg.ID)), closed: make(chan struct{}),
		handled: map[string]string{}, stopped: map[string]bool{}, running: map[string]context.CancelFunc{},
	}
	nc, err := nats.Connect(cfg.URL,
		auth,
		nats.Name("tocsin-provider-"+cfg.ID),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(backoff),
		nats.DrainTimeout(5*time.Second),
		// nats.go gives up by itself, closing the connection, when a
		// server answers the same authorization error twice in a row (on
		// the first connection or any reconnection): the credentials are
		// refused for good, not by a server that is starting up.
		nats.ConnectHandler(func(nc *nats.Conn) {
			c.log.Info("connected to NATS", slog.String("url", nc.ConnectedUrlRedacted()))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.log.Warn("disconnected from NATS; reconnecting", slog.Any("error", err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info("reconnected to NATS", slog.String("url", nc.ConnectedUrlRedacted()))
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			c.log.Warn("NATS connection attempt failed; retrying", slog.Any("error", err))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.log.Warn("NATS error", slog.Any("error", err))
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); isAuthError(err) {
				c.closeErr = fmt.Errorf("provider %s: %w: %w (rotate the provider's credentials: tocsin provider rotate ID, and use the new .creds file)",
					cfg.ID, ErrCredentialsRefused, err)
				c.log.Error("NATS refused the credentials; giving up", slog.Any("error", err))
			} else {
				c.closeErr = fmt.Errorf("provider %s: NATS connection closed: %w", cfg.ID, cmp.Or(err, nats.ErrConnectionClosed))
			}
			close(c.closed)
		}),
	)
	if err != nil {
		if isAuthError(err) {
			return nil, fmt.Errorf("provider %s: %w: %w (rotate the provider's credentials: tocsin provider rotate ID, and use the new .creds file)", cfg.ID, ErrCredentialsRefused, err)
		}
		return nil, fmt.Errorf("provider %s: connect: %w", cfg.ID, err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(requestTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("provider %s: %w", cfg.ID, err)
	}
	c.nc, c.js = nc, js
	return c, nil
}

// isAuthError reports whether err is NATS refusing who the client is.
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}

// Close waits for in-flight sends and closes the connection.
func (c *Client) Close() {
	c.wg.Wait()
	_ = c.nc.Drain()
}

// Run pulls dispatches until ctx ends, calling h for each broadcast once.
// Whatever ends a pull (a server restart, the consumer deleted and made
// again, a lost heartbeat) starts it again after a pause; Run returns nil
// when ctx ends, and an error only when the connection is closed for good,
// wrapping ErrCredentialsRefused if NATS refused the credentials. Before
// returning it cancels in-flight sends and waits for them.
func (c *Client) Run(ctx context.Context, h Handler) error {
	c.mu.Lock()
	c.stopping = false
	c.mu.Unlock()
	defer c.stopSends()
	for attempt := 1; ; attempt++ {
		began := time.Now()
		err := c.consume(ctx, h)
		if c.nc.IsClosed() {
			// The closed handler, which says why, runs asynchronously
			// and may not have yet.
			select {
			case <-c.closed:
				return c.closeErr
			case <-time.After(5 * time.Second):
				return fmt.Errorf("provider %s: NATS connection closed: %w", c.cfg.ID, err)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > 2*pullExpiry {
			attempt = 1 // it worked for a while: this is a new trouble
		}
		wait := backoff(attempt)
		c.log.Warn("not pulling dispatches; starting again", slog.Any("error", err), slog.Duration("retry_in", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-c.closed:
			t.Stop()
			return c.closeErr
		case <-t.C:
		}
	}
}

// consume pulls from the provider's consumer until ctx ends, the
// connection closes, or the pull fails; it returns why it stopped, after
// its receive callback has returned.
func (c *Client) consume(ctx context.Context, h Handler) error {
	lookup, cancel := context.WithTimeout(ctx, requestTimeout)
	cons, err := c.js.Consumer(lookup, DispatchStream, c.cfg.ID)
	cancel()
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.cfg.ID, err)
	}
	failed := make(chan error, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) { c.receive(ctx, m, h) },
		jetstream.PullExpiry(pullExpiry),
		// Any error ends this consume and Run starts a fresh one: that
		// looks the consumer up again (it may have been deleted and
		// made again, or lost with a server's store) instead of trusting
		// the client library to notice.
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			select {
			case failed <- err:
			default:
			}
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.cfg.ID, err)
	}
	defer func() {
		cc.Stop()
		// Stop does not wait for a callback under way; Closed does
		// (the subscription closes after its last callback returns).
		select {
		case <-cc.Closed():
		case <-time.After(stopWait):
			c.log.Warn("a dispatch callback is still running after the pull stopped")
		}
	}()
	c.log.Info("pulling dispatches", slog.String("stream", DispatchStream), slog.String("consumer", c.cfg.ID))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return c.closeErr
	case err := <-failed:
		return fmt.Errorf("pull: %w", err)
	case <-cc.Closed():
		return errors.New("pull ended")
	}
}

// stopSends takes on no more dispatches, cancels the sends under way and
// waits for them (they report themselves failed).
func (c *Client) stopSends() {
	c.mu.Lock()
	c.stopping = true
	for _, cancel := range c.running {
		cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// receive handles one message. It acks only after the outcome is safe: a
// received receipt published, or the message recognised as a duplicate or
// a stop. While Run shuts down it naks instead, so the dispatch comes back
// to the next run rather than being reported failed unattempted.
func (c *Client) receive(ctx context.Context, m jetstream.Msg, h Handler) {
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		_ = m.Nak()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	started := false
	defer func() {
		if !started {
			c.wg.Done()
		}
	}()

	var d Dispatch
	if err := json.Unmarshal(m.Data(), &d); err != nil || d.BroadcastID == "" {
		c.log.Warn("malformed dispatch terminated", slog.Any("error", err))
		_ = m.Term()
		return
	}
	var seq uint64
	attrs := []any{slog.String("broadcast", d.BroadcastID), slog.String("type", d.Type)}
	if meta, err := m.Metadata(); err == nil {
		seq = meta.Sequence.Stream
		attrs = append(attrs, slog.Uint64("seq", seq), slog.Uint64("delivery", meta.NumDelivered))
	}
	if d.References != "" {
		attrs = append(attrs, slog.String("references", d.References))
	}
	c.log.Info("dispatch received", append(attrs, slog.Any("regions", d.Regions))...)
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
	// A redelivery is the same broadcast id with the same message. A
	// coordinator restored from a backup can hand out a broadcast id again
	// for a different broadcast: that one is new, not a redelivery.
	fp := fingerprint(d)
	c.mu.Lock()
	dup, stopped := c.handled[d.BroadcastID] == fp, c.stopped[d.BroadcastID]
	if !dup && !stopped {
		c.handled[d.BroadcastID] = fp
	}
	c.mu.Unlock()
	if dup || stopped {
		c.log.Info("dispatch dropped", slog.String("broadcast", d.BroadcastID), slog.Bool("redelivery", dup), slog.Bool("stopped", stopped))
		_ = m.Ack() // a redelivery, or overtaken by its stop
		return
	}
	r := &Reporter{c: c, id: d.BroadcastID, seq: seq, nonce: nonce()}
	if err := r.send(ctx, Receipt{Status: StatusReceived}); err != nil {
		c.mu.Lock()
		delete(c.handled, d.BroadcastID)
		c.mu.Unlock()
		c.log.Warn("could not confirm receipt; will be redelivered", slog.String("broadcast", d.BroadcastID), slog.Any("error", err))
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()

	sendCtx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.running[d.BroadcastID] = cancel
	c.mu.Unlock()
	started = true // the goroutine owns the wg slot now
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.running, d.BroadcastID)
			c.mu.Unlock()
			cancel()
		}()
		err := h(sendCtx, d, r)
		// The failure report must outlive the cancellation that caused
		// it; send bounds it with its own deadline.
		report := context.WithoutCancel(ctx)
		failed := func(detail string) {
			_ = r.send(report, Receipt{Status: StatusFailed, Sent: r.last.Sent, Delivered: r.last.Delivered,
				Failed: r.last.Failed, Recipients: r.last.Recipients, Detail: detail})
		}
		switch {
		case err == nil:
		case sendCtx.Err() != nil && ctx.Err() == nil:
			failed("stopped by Tocsin")
		case ctx.Err() != nil:
			// The provider is shutting down mid-send. The dispatch was
			// acked, so saying so is the only way Tocsin learns that the
			// public did not all get it, and may send it again.
			c.mu.Lock()
			delete(c.handled, d.BroadcastID)
			c.mu.Unlock()
			failed("provider shut down before it finished sending")
		default:
			// Forget it, so that Tocsin's re-send of a failed broadcast
			// (a new message) is taken on rather than dropped.
			c.mu.Lock()
			delete(c.handled, d.BroadcastID)
			c.mu.Unlock()
			failed(err.Error())
		}
	}()
}

// Reporter publishes receipts for one broadcast.
type Reporter struct {
	c     *Client
	id    string
	seq   uint64 // the dispatch's stream sequence: a re-send has a new one
	nonce string // random, per dispatch taken on: receipt ids cannot be guessed
	last  Receipt
}

// Progress reports that sending is under way.
func (r *Reporter) Progress(ctx context.Context, recipients, sent, delivered, failed int) error {
	return r.send(ctx, Receipt{Status: StatusSending, Recipients: recipients, Sent: sent, Delivered: delivered, Failed: failed})
}

// Done reports that sending finished.
func (r *Reporter) Done(ctx context.Context, recipients, sent, delivered, failed int, detail string) error {
	return r.send(ctx, Receipt{Status: StatusDelivered, Recipients: recipients, Sent: sent, Delivered: delivered, Failed: failed, Detail: detail})
}

// send publishes a receipt and waits for JetStream to store it. It tries
// again through a reconnect or a stream that is not answering yet, for up
// to receiptDeadline: the message id makes a repeat harmless.
func (r *Reporter) send(ctx context.Context, rc Receipt) error {
	rc.BroadcastID = r.id
	data, err := json.Marshal(rc)
	if err != nil {
		return err
	}
	// The id makes a retry of this publish a duplicate, and nothing
	// else: it names the provider, the dispatch (a re-send's receipts are
	// new) and the receipt, and carries a random part drawn when the
	// dispatch was taken on, so no one else can send it first. (Tocsin
	// keeps almost no duplicate window for receipts, and applying one
	// twice does nothing; the id is for a server that does.)
	msgID := fmt.Sprintf("%s.%s.%d.%s.%s.%d.%d.%d", r.c.cfg.ID, r.id, r.seq, r.nonce, rc.Status, rc.Sent, rc.Delivered, rc.Failed)
	ctx, cancel := context.WithTimeout(ctx, receiptDeadline)
	defer cancel()
	for attempt := 1; ; attempt++ {
		try, cancelTry := context.WithTimeout(ctx, requestTimeout)
		_, err = r.c.js.Publish(try, ReceiptPrefix+r.c.cfg.ID, data, jetstream.WithMsgID(msgID))
		cancelTry()
		if err == nil {
			break
		}
		wait := backoff(attempt)
		r.c.log.Warn("receipt not stored yet; retrying", slog.String("broadcast", r.id), slog.String("status", rc.Status),
			slog.Any("error", err), slog.Duration("retry_in", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("provider %s: receipt for %s: %w", r.c.cfg.ID, r.id, err)
		case <-t.C:
		}
	}
	r.last = rc
	r.c.log.Info("receipt sent", slog.String("broadcast", r.id), slog.String("status", rc.Status),
		slog.Int("recipients", rc.Recipients), slog.Int("sent", rc.Sent), slog.Int("delivered", rc.Delivered),
		slog.Int("failed", rc.Failed))
	return nil
}

// fingerprint identifies what a dispatch asks to send, whatever its
// message id: a re-send of the same broadcast has the same one.
func fingerprint(d Dispatch) string {
	h := sha256.New()
	for _, part := range []string{d.Type, d.Content, d.SendAt.UTC().Format(time.RFC3339Nano), strings.Join(d.Regions, ",")} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// nonce returns 64 random bits in hex.
func nonce() string {
	var b [8]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
