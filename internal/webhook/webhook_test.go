package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/internal/webhook"
)

func TestSignAndVerify(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	body := []byte(`{"id":"N000001","kind":"rejected"}`)
	sig := webhook.Sign("whsec_k", now, body)
	if want := "t=1790000000,v1="; sig[:len(want)] != want {
		t.Fatalf("Sign = %q", sig)
	}
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"good", "whsec_k", sig, body, now, nil},
		{"within tolerance", "whsec_k", sig, body, now.Add(4 * time.Minute), nil},
		{"replayed later", "whsec_k", sig, body, now.Add(6 * time.Minute), webhook.ErrStale},
		{"other secret", "whsec_x", sig, body, now, webhook.ErrMismatch},
		{"body changed", "whsec_k", sig, []byte(`{"id":"N000001","kind":"approved"}`), now, webhook.ErrMismatch},
		{"timestamp changed", "whsec_k", "t=1790000001" + sig[len("t=1790000000"):], body, now, webhook.ErrMismatch},
		{"no v1", "whsec_k", "t=1790000000", body, now, webhook.ErrMalformed},
		{"garbage", "whsec_k", "sha256=abc", body, now, webhook.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := webhook.Verify(tt.secret, tt.header, tt.body, tt.now, 5*time.Minute); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	d := &webhook.Deliverer{Backoff: time.Second, MaxBackoff: 10 * time.Second}
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		if got := d.Delay(failures); got != want {
			t.Errorf("Delay(%d) = %s, want %s", failures, got, want)
		}
	}
}

var filedAt = time.Date(2026, 9, 18, 10, 0, 0, 0, tocsin.Shanghai)

// receiver is a department's webhook endpoint: it checks every delivery's
// signature and answers with the statuses it is given, then 204.
type receiver struct {
	t       *testing.T
	secret  atomic.Value // string
	mu      sync.Mutex
	answers []int           // guarded by mu
	got     []tocsin.Notice // verified deliveries; guarded by mu
	tries   int             // guarded by mu
	srv     *httptest.Server
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	r := &receiver{t: t, answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	secret, _ := r.secret.Load().(string)
	if err := webhook.Verify(secret, req.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("delivery %s: %v", body, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	if len(r.answers) > 0 {
		status := r.answers[0]
		r.answers = r.answers[1:]
		w.WriteHeader(status)
		return
	}
	var n tocsin.Notice
	if err := json.Unmarshal(body, &n); err != nil {
		r.t.Errorf("delivery body %s: %v", body, err)
	}
	r.got = append(r.got, n)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) delivered() ([]tocsin.Notice, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tocsin.Notice(nil), r.got...), r.tries
}

// await polls cond until it holds or 10 s pass.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A rejection reaches the department's webhook, signed, after the
// receiver failed twice; the inbox shows how the delivery went. Another
// organisation's slow receiver does not hold it up.
func TestDeliveryRetriesUntilTaken(t *testing.T) {
	ctx := context.Background()
	store := testkit.MustStore(t, testkit.Logger(t))
	svc := testkit.MustService(t, store, tocsin.StartingAt(filedAt))
	testkit.MustSeed(t, svc, testkit.Directory)

	slow := make(chan struct{})
	slowSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-slow:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slowSrv.Close)
	t.Cleanup(func() { close(slow) })

	gd := newReceiver(t, http.StatusInternalServerError, http.StatusBadGateway)
	hook, err := svc.SetWebhook(ctx, testkit.Actor(t, "gd-met"), "gd-met", gd.srv.URL+"/tocsin")
	if err != nil {
		t.Fatal(err)
	}
	gd.secret.Store(hook.Secret)
	if _, err := svc.SetWebhook(ctx, testkit.Actor(t, "admin"), "gx-health", slowSrv.URL); err != nil {
		t.Fatal(err)
	}

	d := &webhook.Deliverer{Service: svc, Log: testkit.Logger(t), Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Poll: 10 * time.Millisecond, Timeout: 30 * time.Second, Clock: svc.Clock.Now}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	// gx-health's receiver hangs on its first delivery.
	gx, _, err := svc.File(ctx, testkit.Actor(t, "gx-health"), tocsin.Filing{Title: "流感疫苗接种提示",
		Content: "【广西卫健委】流感高发季，请及时接种疫苗。", Scope: []string{"450000"}, SendAt: ptrTime(filedAt.AddDate(0, 0, 40))}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, testkit.Actor(t, "gx-cab"), gx.ID); err != nil {
		t.Fatal(err)
	}
	b, _, err := svc.File(ctx, testkit.Actor(t, "gd-met"), tocsin.Filing{Title: "国庆出行提示",
		Content: "【广东省气象局】国庆假期出行请关注天气预报。", Scope: []string{"440100"}, SendAt: ptrTime(filedAt.AddDate(0, 0, 40))}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Reject(ctx, testkit.Actor(t, "gd-cab"), b.ID, tocsin.ReasonNotPublicWelfare, "内容为商业推广。"); err != nil {
		t.Fatal(err)
	}
	await(t, "the rejection delivered", func() bool { got, _ := gd.delivered(); return len(got) == 1 })
	got, tries := gd.delivered()
	if tries != 3 {
		t.Errorf("receiver was tried %d times, want 3 (two failures, then success)", tries)
	}
	if n := got[0]; n.Kind != tocsin.NoticeRejected || n.BroadcastID != b.ID || n.Org != "gd-met" ||
		n.Reason != "内容为商业推广。" || n.ReasonCode != tocsin.ReasonNotPublicWelfare || n.ID == "" {
		t.Errorf("delivered %+v", n)
	}
	await(t, "the delivery recorded", func() bool {
		p, err := svc.Inbox(ctx, testkit.Actor(t, "gd-met"), 0, "")
		return err == nil && len(p.Notifications) == 1 && p.Notifications[0].Webhook != nil &&
			p.Notifications[0].Webhook.State == tocsin.WebhookDelivered
	})
	p, _ := svc.Inbox(ctx, testkit.Actor(t, "gd-met"), 0, "")
	if w := p.Notifications[0].Webhook; w.Attempts != 3 || w.LastStatus != http.StatusNoContent || w.DeliveredAt == nil || w.NextAttemptAt != nil {
		t.Errorf("delivery status = %+v", w)
	}
	// gx-health's approval is still in flight (its receiver hangs).
	if st, err := svc.GetWebhook(ctx, testkit.Actor(t, "gx-health"), "gx-health"); err != nil || st.Queued != 1 {
		t.Errorf("gx-health's queue = %+v, %v; want its one delivery still queued", st, err)
	}
}

func ptrTime(t time.Time) *time.Time { return &t }
