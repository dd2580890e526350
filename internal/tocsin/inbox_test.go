package tocsin_test

import (
	"context"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// inbox returns org's notifications, newest first, and its unread count.
func (e *env) inbox(t *testing.T, org string) ([]tocsin.Notification, int) {
	t.Helper()
	p, err := e.svc.Inbox(context.Background(), actor(t, org), 0, "")
	if err != nil {
		t.Fatalf("inbox of %s: %v", org, err)
	}
	return p.Notifications, p.Unread
}

func kinds(ns []tocsin.Notification) []tocsin.NoticeKind {
	out := make([]tocsin.NoticeKind, len(ns))
	for i, n := range ns {
		out[i] = n.Kind
	}
	return out
}

// A rejection reaches the department's inbox with its reason, once; the
// regulator's inbox stays empty; another organisation can neither read nor
// mark it.
func TestRejectionReachesTheInbox(t *testing.T) {
	ctx := context.Background()
	e := mustService(t, filedAt)
	b, _, err := e.svc.File(ctx, actor(t, "gd-met"), ordinary("国庆出行提示", "440100"), "")
	if err != nil {
		t.Fatal(err)
	}
	if ns, unread := e.inbox(t, "gd-met"); len(ns) != 0 || unread != 0 {
		t.Fatalf("inbox after filing = %v (%d unread), want empty", kinds(ns), unread)
	}
	if _, err := e.svc.Reject(ctx, actor(t, "gd-cab"), b.ID, tocsin.ReasonNotPublicWelfare, "内容为商业推广。"); err != nil {
		t.Fatal(err)
	}
	ns, unread := e.inbox(t, "gd-met")
	if len(ns) != 1 || unread != 1 {
		t.Fatalf("inbox = %v (%d unread), want one unread rejection", kinds(ns), unread)
	}
	n := ns[0]
	if n.Kind != tocsin.NoticeRejected || n.BroadcastID != b.ID || n.By != "gd-cab" ||
		n.ReasonCode != tocsin.ReasonNotPublicWelfare || n.Reason != "内容为商业推广。" || n.Read || n.Webhook != nil {
		t.Errorf("notification = %+v", n)
	}
	if ns, _ := e.inbox(t, "gd-cab"); len(ns) != 0 {
		t.Errorf("the regulator's inbox = %v, want empty", kinds(ns))
	}
	for _, other := range []string{"gx-health", "gd-cab", "admin"} {
		if _, err := e.svc.MarkRead(ctx, actor(t, other), n.ID); !tocsin.IsCode(err, tocsin.CodeNotFound) {
			t.Errorf("%s marking gd-met's notification read: %v, want not found", other, err)
		}
	}
	if _, unread := e.inbox(t, "gd-met"); unread != 1 {
		t.Errorf("unread after others tried = %d, want 1", unread)
	}
	read, err := e.svc.MarkRead(ctx, actor(t, "gd-met"), n.ID)
	if err != nil || !read.Read || read.ReadAt == nil {
		t.Fatalf("MarkRead = %+v, %v", read, err)
	}
	if _, err := e.svc.MarkRead(ctx, actor(t, "gd-met"), n.ID); err != nil {
		t.Errorf("marking it read again: %v", err)
	}
	if ns, unread := e.inbox(t, "gd-met"); unread != 0 || len(ns) != 1 || !ns[0].Read {
		t.Errorf("after reading: %v, %d unread", ns, unread)
	}
}

// Each fact is told once, whatever changes follow: an emergency's release
// tells its post-hoc due date; a failed provider, a late one, a review
// verdict and an overdue report each add one notification.
func TestEmergencyNotifications(t *testing.T) {
	ctx := context.Background()
	e := mustService(t, filedAt)
	gdMet := actor(t, "gd-met")
	b, _, err := e.svc.File(ctx, gdMet, emergency("台风红色预警", "440100"), "")
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := e.inbox(t, "gd-met")
	if len(ns) != 1 || ns[0].Kind != tocsin.NoticePostHocDue || ns[0].DueDate == "" || !ns[0].Emergency {
		t.Fatalf("after release: %+v", ns)
	}
	due := ns[0].DueDate

	e.clock.Add(time.Minute)
	if _, err := e.svc.FlagLate(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.FlagLate(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ApplyReceipt(ctx, "cmcc", tocsin.Receipt{BroadcastID: b.ID, Status: "failed", Detail: "gateway down"}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ApplyReceipt(ctx, "cucc", tocsin.Receipt{BroadcastID: b.ID, Status: "delivered", Recipients: 10, Sent: 10, Delivered: 10}); err != nil {
		t.Fatal(err)
	}
	ns, unread := e.inbox(t, "gd-met")
	want := []tocsin.NoticeKind{tocsin.NoticeDispatchFailed, tocsin.NoticeLate, tocsin.NoticeLate, tocsin.NoticePostHocDue}
	if !equalKinds(kinds(ns), want) || unread != len(want) {
		t.Fatalf("inbox = %v (%d unread), want %v", kinds(ns), unread, want)
	}
	if ns[0].Provider != "cmcc" || ns[0].Detail != "gateway down" {
		t.Errorf("dispatch failure = %+v", ns[0])
	}

	// Past the due date, the hourly check tells the department once.
	dueDay, _ := time.ParseInLocation(tocsin.DateLayout, due, tocsin.Shanghai)
	e.clock.Set(dueDay.Add(30 * time.Hour))
	for i, want := range []int{1, 0} {
		if n, err := e.svc.NotifyOverdue(ctx); err != nil || n != want {
			t.Fatalf("NotifyOverdue #%d = %d, %v; want %d", i+1, n, err, want)
		}
	}
	if _, err := e.svc.FilePostHoc(ctx, gdMet, b.ID, "台风过境，预警及时。"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ReviewPostHoc(ctx, actor(t, "gd-cab"), b.ID, tocsin.PostHocNotEmergency, "不属于紧急情形。"); err != nil {
		t.Fatal(err)
	}
	ns, unread = e.inbox(t, "gd-met")
	want = append([]tocsin.NoticeKind{tocsin.NoticePostHocReviewed, tocsin.NoticePostHocOverdue}, want...)
	if !equalKinds(kinds(ns), want) || unread != len(want) {
		t.Fatalf("inbox = %v (%d unread), want %v", kinds(ns), unread, want)
	}
	if v := ns[0]; v.Verdict != tocsin.PostHocNotEmergency || v.Note != "不属于紧急情形。" || v.By != "gd-cab" {
		t.Errorf("verdict = %+v", v)
	}
	if n, err := e.svc.MarkAllRead(ctx, gdMet); err != nil || n != len(want) {
		t.Errorf("MarkAllRead = %d, %v", n, err)
	}
	if _, unread := e.inbox(t, "gd-met"); unread != 0 {
		t.Errorf("unread after marking all = %d", unread)
	}
}

func equalKinds(a, b []tocsin.NoticeKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// With a webhook registered, each notification is queued for it in the
// same transaction; the secret is shown once and only the organisation or
// the admin may set it.
func TestWebhookQueuedWithTheNotification(t *testing.T) {
	ctx := context.Background()
	e := mustService(t, filedAt)
	if _, err := e.svc.SetWebhook(ctx, actor(t, "gd-cab"), "gd-met", "https://example.org/hook"); !tocsin.IsCode(err, tocsin.CodeForbidden) {
		t.Errorf("a regulator setting gd-met's webhook: %v, want forbidden", err)
	}
	if _, err := e.svc.SetWebhook(ctx, actor(t, "admin"), "nobody", "https://example.org/hook"); !tocsin.IsCode(err, tocsin.CodeNotFound) {
		t.Errorf("a webhook for an unknown organisation: %v, want not found", err)
	}
	hook, err := e.svc.SetWebhook(ctx, actor(t, "gd-met"), "gd-met", "https://example.org/hook")
	if err != nil || len(hook.Secret) < 40 {
		t.Fatalf("SetWebhook = %+v, %v", hook, err)
	}
	b, _, err := e.svc.File(ctx, actor(t, "gd-met"), ordinary("国庆出行提示", "440100"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, actor(t, "gd-cab"), b.ID); err != nil {
		t.Fatal(err)
	}
	due, err := e.svc.DueWebhooks(ctx)
	if err != nil || len(due) != 1 {
		t.Fatalf("DueWebhooks = %+v, %v", due, err)
	}
	if due[0].URL != "https://example.org/hook" || due[0].Secret != hook.Secret || due[0].Job.Org != "gd-met" {
		t.Errorf("attempt = %+v", due[0])
	}
	st, err := e.svc.GetWebhook(ctx, actor(t, "admin"), "gd-met")
	if err != nil || st.Queued != 1 || st.URL != hook.URL {
		t.Errorf("GetWebhook = %+v, %v", st, err)
	}
	// A failure waits for its retry time; a success leaves the queue.
	retry := e.clock.Now().Add(time.Minute)
	if err := e.svc.RecordWebhookAttempt(ctx, due[0].Job, tocsin.WebhookResult{Status: 503, Err: "receiver answered 503", Retry: retry}); err != nil {
		t.Fatal(err)
	}
	if again, _ := e.svc.DueWebhooks(ctx); len(again) != 0 {
		t.Errorf("due before the retry time: %+v", again)
	}
	ns, _ := e.inbox(t, "gd-met")
	if d := ns[0].Webhook; d == nil || d.State != tocsin.WebhookRetrying || d.Attempts != 1 || d.LastStatus != 503 || d.NextAttemptAt == nil {
		t.Errorf("delivery after a failure = %+v", d)
	}
	e.clock.Set(retry)
	due, _ = e.svc.DueWebhooks(ctx)
	if len(due) != 1 || due[0].Attempts != 1 {
		t.Fatalf("due at the retry time: %+v", due)
	}
	if err := e.svc.RecordWebhookAttempt(ctx, due[0].Job, tocsin.WebhookResult{Status: 204}); err != nil {
		t.Fatal(err)
	}
	ns, _ = e.inbox(t, "gd-met")
	if d := ns[0].Webhook; d == nil || d.State != tocsin.WebhookDelivered || d.Attempts != 2 || d.DeliveredAt == nil {
		t.Errorf("delivery after success = %+v", d)
	}
	if st, _ := e.svc.GetWebhook(ctx, actor(t, "gd-met"), "gd-met"); st.Queued != 0 {
		t.Errorf("queued after delivery = %d", st.Queued)
	}
}

func TestCheckWebhookURL(t *testing.T) {
	tests := []struct {
		name, url string
		ok        bool
	}{
		{"https", "https://hooks.gd-met.gov.cn/tocsin", true},
		{"http with port", "http://10.0.0.5:8080/in", true},
		{"empty", "", false},
		{"ftp", "ftp://example.org/x", false},
		{"file", "file:///etc/passwd", false},
		{"javascript", "javascript:alert(1)", false},
		{"no host", "https:///path", false},
		{"credentials", "https://user:pw@example.org/", false},
		{"user only", "https://user@example.org/", false},
		{"fragment", "https://example.org/#x", false},
		{"relative", "/hook", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tocsin.CheckWebhookURL(tt.url)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckWebhookURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
			}
			if err != nil && !tocsin.IsCode(err, tocsin.CodeValidation) {
				t.Errorf("error %v is not a validation error", err)
			}
		})
	}
}
