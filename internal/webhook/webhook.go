// Package webhook delivers department notifications to the webhooks
// organisations register: each notification's JSON, POSTed with a
// Tocsin-Signature header (an HMAC-SHA256 over the timestamp and the body
// with the organisation's secret), retried with capped exponential backoff
// until the receiver answers 2xx. The queue is the store's (written with
// the notification), so nothing is lost across restarts; the Deliverer is
// a loop the coordinator supervises.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// SignatureHeader is the header every delivery is signed in.
const SignatureHeader = "Tocsin-Signature"

// Sign returns the Tocsin-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors Verify returns.
var (
	ErrMalformed = errors.New("webhook: malformed Tocsin-Signature")
	ErrStale     = errors.New("webhook: timestamp outside the tolerance")
	ErrMismatch  = errors.New("webhook: signature does not match")
)

// Verify checks a Tocsin-Signature header against body, as a receiver
// does: the HMAC must match (compared in constant time) and the timestamp
// lie within tolerance of now, so a captured delivery cannot be replayed
// later.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformed
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrMalformed
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return ErrMismatch
}

// Service is what the deliverer needs of the domain.
type Service interface {
	DueWebhooks(ctx context.Context) ([]tocsin.WebhookAttempt, error)
	RecordWebhookAttempt(ctx context.Context, job tocsin.WebhookJob, r tocsin.WebhookResult) error
}

// Deliverer sends queued deliveries. Zero settings take the defaults.
type Deliverer struct {
	Service Service
	Log     *slog.Logger
	// Client sends the requests; default one with Timeout and no
	// redirects followed (a redirect is a failure: it would send the
	// signed body somewhere the organisation did not register).
	Client *http.Client
	// Timeout bounds one attempt, connection to last byte; default 10s.
	Timeout time.Duration
	// Backoff is the wait after the first failure, doubled after each
	// further one up to MaxBackoff; defaults 5s and 1h.
	Backoff, MaxBackoff time.Duration
	// Poll is how often the queue is read; default 1s.
	Poll time.Duration
	// Concurrency bounds deliveries in flight at once (one per
	// organisation at most); default 8.
	Concurrency int
	// Now is the real clock, for the signature's timestamp; default
	// time.Now. Retry times follow the service's clock.
	Now func() time.Time
	// Clock is the service's clock, for retry times; default Now.
	Clock func() time.Time

	mu       sync.Mutex
	inflight map[string]bool // organisations with a delivery in flight; guarded by mu
}

func (d *Deliverer) defaults() {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Timeout <= 0 {
		d.Timeout = 10 * time.Second
	}
	if d.Client == nil {
		d.Client = &http.Client{
			Timeout:       d.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if d.Backoff <= 0 {
		d.Backoff = 5 * time.Second
	}
	if d.MaxBackoff <= 0 {
		d.MaxBackoff = time.Hour
	}
	d.MaxBackoff = max(d.MaxBackoff, d.Backoff)
	if d.Poll <= 0 {
		d.Poll = time.Second
	}
	if d.Concurrency <= 0 {
		d.Concurrency = 8
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Clock == nil {
		d.Clock = d.Now
	}
	d.inflight = map[string]bool{}
}

// Delay is the wait before the next attempt after failures consecutive
// failures: Backoff doubled each time, at most MaxBackoff.
func (d *Deliverer) Delay(failures int) time.Duration {
	wait := d.Backoff
	for i := 1; i < failures && wait < d.MaxBackoff; i++ {
		wait *= 2
	}
	return min(wait, d.MaxBackoff)
}

// Run delivers until ctx ends, then waits for the attempts in flight
// (which ctx also ends). A slow receiver holds only its own
// organisation's queue and one of the Concurrency slots, never the loop.
func (d *Deliverer) Run(ctx context.Context) error {
	d.defaults()
	slots := make(chan struct{}, d.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(d.Poll)
	defer tick.Stop()
	for {
		due, err := d.Service.DueWebhooks(ctx)
		if err != nil && ctx.Err() == nil {
			d.Log.Warn("webhook queue unreadable", slog.Any("error", err))
		}
		for _, a := range due {
			if !d.claim(a.Job.Org) {
				continue
			}
			select {
			case slots <- struct{}{}:
			default:
				d.release(a.Job.Org) // every slot busy: next tick
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots; d.release(a.Job.Org) }()
				d.attempt(ctx, a)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (d *Deliverer) claim(org string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inflight[org] {
		return false
	}
	d.inflight[org] = true
	return true
}

func (d *Deliverer) release(org string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inflight, org)
}

// attempt makes one delivery and records how it went.
func (d *Deliverer) attempt(ctx context.Context, a tocsin.WebhookAttempt) {
	status, err := d.post(ctx, a)
	if ctx.Err() != nil {
		return // shutting down: the job stays queued, untouched
	}
	r := tocsin.WebhookResult{Status: status}
	if err != nil {
		r.Err = err.Error()
	} else if status < 200 || status > 299 {
		r.Err = fmt.Sprintf("receiver answered %d", status)
	}
	if !r.Delivered() {
		r.Retry = d.Clock().Add(d.Delay(a.Attempts + 1))
		d.Log.Info("webhook delivery failed; will retry", slog.String("org", a.Job.Org),
			slog.String("notification", a.Job.NotificationID), slog.Int("attempt", a.Attempts+1),
			slog.String("error", r.Err), slog.Time("retry_at", r.Retry))
	}
	if err := d.Service.RecordWebhookAttempt(context.WithoutCancel(ctx), a.Job, r); err != nil {
		d.Log.Warn("webhook attempt not recorded; it will be repeated", slog.String("org", a.Job.Org),
			slog.String("notification", a.Job.NotificationID), slog.Any("error", err))
	}
}

func (d *Deliverer) post(ctx context.Context, a tocsin.WebhookAttempt) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, strings.NewReader(string(a.Body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Tocsin-Webhook/1")
	req.Header.Set(SignatureHeader, Sign(a.Secret, d.Now(), a.Body))
	req.Header.Set("Tocsin-Notification", a.Job.NotificationID)
	res, err := d.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, nil
}
