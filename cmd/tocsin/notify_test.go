package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/webhook"
)

// hookReceiver is a department's webhook endpoint over real HTTP: it
// verifies each delivery's signature and timestamp, and answers 503 while
// down.
type hookReceiver struct {
	t      *testing.T
	secret atomic.Value // string
	down   atomic.Bool
	tries  atomic.Int64
	mu     sync.Mutex
	got    []map[string]any // guarded by mu
}

func newHookReceiver(t *testing.T) (*hookReceiver, string) {
	h := &hookReceiver{t: t}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		secret, _ := h.secret.Load().(string)
		if err := webhook.Verify(secret, r.Header.Get("Tocsin-Signature"), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("delivery not signed with the secret: %v (%s)", err, r.Header.Get("Tocsin-Signature"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.tries.Add(1)
		if h.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var n map[string]any
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("delivery is not JSON: %s", body)
		}
		h.mu.Lock()
		h.got = append(h.got, n)
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL + "/tocsin"
}

func (h *hookReceiver) delivered() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.got...)
}

func awaitCond(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A rejection reaches the department's inbox and its webhook, signed, even
// though the receiver is down when it happens and the coordinator is
// restarted before it comes back: the delivery waits in the store and goes
// out after the restart.
func TestRejectionReachesTheWebhookAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	args := []string{"demo", "--no-simulators", "--webhook-backoff", "50ms", "--webhook-max-backoff", "200ms"}
	s := startServer(t, dir, args...)
	tokens := demoTokens(t, dir)
	recv, hookURL := newHookReceiver(t)
	recv.down.Store(true)

	reg := call(t, "PUT", s.base+"/api/v1/organisations/gd-met/webhook", tokens["gd-met"], `{"url":"`+hookURL+`"}`)
	secret, _ := reg.body["secret"].(string)
	if reg.status != http.StatusOK || secret == "" {
		t.Fatalf("register webhook: %d %v", reg.status, reg.body)
	}
	recv.secret.Store(secret)

	filed := call(t, "POST", s.base+"/api/v1/broadcasts", tokens["gd-met"],
		`{"title":"国庆出行提示","content":"【广东省气象局】国庆假期出行请关注天气预报。","scope":["440100"],"send_at":"2099-10-09T09:00:00+08:00"}`)
	if filed.status != http.StatusCreated {
		t.Fatalf("filing: %d %v", filed.status, filed.body)
	}
	id := filed.body["id"].(string)
	rej := call(t, "POST", s.base+"/api/v1/broadcasts/"+id+"/reject", tokens["gd-cab"],
		`{"reason_code":"not_public_welfare","reason":"内容为商业推广。"}`)
	if rej.status != http.StatusOK {
		t.Fatalf("reject: %d %v", rej.status, rej.body)
	}
	in := call(t, "GET", s.base+"/api/v1/inbox", tokens["gd-met"], "")
	ns, _ := in.body["notifications"].([]any)
	if in.status != http.StatusOK || len(ns) != 1 || in.body["unread"] != 1.0 {
		t.Fatalf("inbox: %d %v", in.status, in.body)
	}
	n := ns[0].(map[string]any)
	if n["kind"] != "rejected" || n["reason"] != "内容为商业推广。" || n["broadcast_id"] != id {
		t.Errorf("notification = %v", n)
	}
	var hook map[string]any
	awaitCond(t, "two failed attempts recorded", 10*time.Second, func() bool {
		in := call(t, "GET", s.base+"/api/v1/inbox", tokens["gd-met"], "")
		hook, _ = in.body["notifications"].([]any)[0].(map[string]any)["webhook"].(map[string]any)
		attempts, _ := hook["attempts"].(float64)
		return attempts >= 2
	})
	if hook["state"] != "retrying" || hook["last_status"] != 503.0 || hook["next_attempt_at"] == nil || hook["attempts"].(float64) < 2 {
		t.Errorf("delivery status while the receiver is down = %v", hook)
	}
	s.stop()

	recv.down.Store(false)
	s = startServer(t, dir, args...)
	awaitCond(t, "the delivery after the restart", 10*time.Second, func() bool { return len(recv.delivered()) == 1 })
	got := recv.delivered()[0]
	if got["kind"] != "rejected" || got["broadcast_id"] != id || got["org"] != "gd-met" || got["reason"] != "内容为商业推广。" || got["reason_code"] != "not_public_welfare" {
		t.Errorf("delivered %v", got)
	}
	awaitCond(t, "the delivery recorded", 5*time.Second, func() bool {
		in := call(t, "GET", s.base+"/api/v1/inbox", tokens["gd-met"], "")
		h, _ := in.body["notifications"].([]any)[0].(map[string]any)["webhook"].(map[string]any)
		return h["state"] == "delivered"
	})
	// Nothing is sent twice: wait past the longest backoff (no event
	// marks a delivery that does not happen).
	time.Sleep(300 * time.Millisecond)
	if n := len(recv.delivered()); n != 1 {
		t.Errorf("delivered %d times, want once", n)
	}
}
