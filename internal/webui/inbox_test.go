package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

var unreadCount = regexp.MustCompile(`<span class="count" id="unread-count"[^>]*>(\d+)</span>`)

// headerUnread is the unread count the header shows, "" for none.
func headerUnread(p page) string {
	if m := unreadCount.FindStringSubmatch(p.Body); m != nil {
		return m[1]
	}
	return ""
}

// A rejection reaches the department's inbox page with its reason, in
// both languages; the header counts it on every page until it is read;
// another organisation neither sees nor marks it.
func TestRejectionInTheInboxPage(t *testing.T) {
	ui := newTestUI(t, false)
	b := ui.fileOrdinary(t, "秋季防火", "【广东省气象局】秋季干燥，注意防火。")
	dept := ui.loggedIn(t, "gd-met")
	if n := headerUnread(dept.get("/broadcasts")); n != "" {
		t.Fatalf("unread before anything happened = %s", n)
	}
	if _, err := ui.Service.Reject(context.Background(), testkit.Actor(t, "gd-cab"), b.ID, tocsin.ReasonContent, "内容需注明发布单位。"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/broadcasts", "/broadcasts/new", "/inbox"} {
		if n := headerUnread(dept.get(path)); n != "1" {
			t.Errorf("GET %s: header unread = %q, want 1", path, n)
		}
	}
	words := map[string][]string{
		"zh-CN,zh;q=0.9": {`<html lang="zh-CN">`, "已退回", "广东省通信管理局", "内容需注明发布单位。", "1 条未读"},
		"en":             {`<html lang="en">`, "Rejected", "Guangdong Communications Administration", "内容需注明发布单位。", "1 unread"},
	}
	for lang, want := range words {
		dept.lang = lang
		p := dept.get("/inbox")
		if p.Status != http.StatusOK {
			t.Fatalf("GET /inbox (%s) = %d\n%s", lang, p.Status, p.Body)
		}
		checkPage(t, "/inbox", p)
		for _, w := range want {
			if !strings.Contains(p.Body, w) {
				t.Errorf("/inbox in %s does not say %q", lang, w)
			}
		}
		if !strings.Contains(p.Body, b.ID) {
			t.Errorf("/inbox in %s does not name %s", lang, b.ID)
		}
	}
	dept.lang = ""

	ns, err := ui.Service.Inbox(context.Background(), testkit.Actor(t, "gd-met"), 0, "")
	if err != nil || len(ns.Notifications) != 1 {
		t.Fatalf("inbox = %+v, %v", ns, err)
	}
	id := ns.Notifications[0].ID

	other := ui.loggedIn(t, "gx-health")
	if p := other.get("/inbox"); p.Status != http.StatusOK || strings.Contains(p.Body, b.ID) || headerUnread(p) != "" {
		t.Errorf("gx-health's inbox shows gd-met's notification: %d", p.Status)
	}
	if p := other.post("/inbox/"+id+"/read", url.Values{}); p.Status != http.StatusNotFound {
		t.Errorf("gx-health marking gd-met's notification: %d, want 404", p.Status)
	}

	p := dept.post("/inbox/"+id+"/read", url.Values{})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/broadcasts/"+b.ID {
		t.Fatalf("opening the notification: %d to %q", p.Status, p.Header.Get("Location"))
	}
	if n := headerUnread(dept.get("/broadcasts")); n != "" {
		t.Errorf("unread after reading = %s", n)
	}
}

func TestMarkAllReadInTheInboxPage(t *testing.T) {
	ui := newTestUI(t, false)
	for _, title := range []string{"一", "二"} {
		b := ui.fileOrdinary(t, title, "【广东省气象局】秋季干燥，注意防火。")
		if _, err := ui.Service.Approve(context.Background(), testkit.Actor(t, "gd-cab"), b.ID); err != nil {
			t.Fatal(err)
		}
	}
	dept := ui.loggedIn(t, "gd-met")
	if n := headerUnread(dept.get("/inbox")); n != "2" {
		t.Fatalf("unread = %q, want 2", n)
	}
	p := dept.post("/inbox/read", url.Values{})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("mark all read: %d", p.Status)
	}
	dept.lang = "en"
	p = dept.get(p.Header.Get("Location"))
	if headerUnread(p) != "" || !strings.Contains(p.Body, "All notifications marked read.") {
		t.Errorf("after marking all read: unread %q", headerUnread(p))
	}
}
