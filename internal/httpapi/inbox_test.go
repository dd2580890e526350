package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

type inboxBody struct {
	Notifications []tocsin.Notification `json:"notifications"`
	Unread        int                   `json:"unread"`
	NextCursor    string                `json:"next_cursor"`
}

// A rejection reaches the department's inbox over the API, newest first
// with the unread count; only the department reads and marks it.
func TestInbox(t *testing.T) {
	api := newTestAPI(t)
	first := api.file(t, "gd-met", ordinary(longAfter, "440100"))
	second := api.file(t, "gd-met", ordinary(longAfter, "440100"))
	if res := api.post(t, "gd-cab", broadcasts+"/"+first.ID+"/approve", nil); res.Status != http.StatusOK {
		t.Fatal(res)
	}
	reject := map[string]any{"reason_code": "not_public_welfare", "reason": "内容为商业推广，不属于公益短信。"}
	if res := api.post(t, "gd-cab", broadcasts+"/"+second.ID+"/reject", reject); res.Status != http.StatusOK {
		t.Fatal(res)
	}
	res := api.get(t, "gd-met", "/api/v1/inbox")
	if res.Status != http.StatusOK {
		t.Fatal(res)
	}
	in := decode[inboxBody](t, res)
	if in.Unread != 2 || len(in.Notifications) != 2 {
		t.Fatalf("inbox = %s", res)
	}
	n := in.Notifications[0]
	if n.Kind != tocsin.NoticeRejected || n.BroadcastID != second.ID || n.Reason != reject["reason"] ||
		string(n.ReasonCode) != reject["reason_code"] || n.By != "gd-cab" || n.Read {
		t.Errorf("newest notification = %+v", n)
	}
	if in.Notifications[1].Kind != tocsin.NoticeApproved || in.Notifications[1].BroadcastID != first.ID {
		t.Errorf("older notification = %+v", in.Notifications[1])
	}

	page := decode[inboxBody](t, api.get(t, "gd-met", "/api/v1/inbox?limit=1"))
	if len(page.Notifications) != 1 || page.NextCursor != n.ID {
		t.Errorf("first page of one = %+v", page)
	}
	page = decode[inboxBody](t, api.get(t, "gd-met", "/api/v1/inbox?limit=1&cursor="+page.NextCursor))
	if len(page.Notifications) != 1 || page.Notifications[0].Kind != tocsin.NoticeApproved || page.NextCursor != "" {
		t.Errorf("second page = %+v", page)
	}
	wantError(t, api.get(t, "gd-met", "/api/v1/inbox?limit=x"), http.StatusUnprocessableEntity, tocsin.CodeValidation)
	wantError(t, api.get(t, "", "/api/v1/inbox"), http.StatusUnauthorized, tocsin.CodeUnauthorized)

	for _, other := range []string{"gx-health", "gd-cab", "mem"} {
		if got := decode[inboxBody](t, api.get(t, other, "/api/v1/inbox")); len(got.Notifications) != 0 || got.Unread != 0 {
			t.Errorf("%s's inbox = %+v, want empty", other, got)
		}
		wantError(t, api.post(t, other, "/api/v1/inbox/"+n.ID+"/read", nil), http.StatusNotFound, tocsin.CodeNotFound)
	}
	read := api.post(t, "gd-met", "/api/v1/inbox/"+n.ID+"/read", nil)
	if got := decode[tocsin.Notification](t, read); read.Status != http.StatusOK || !got.Read || got.ReadAt == nil {
		t.Fatalf("mark read: %s", read)
	}
	if got := decode[inboxBody](t, api.get(t, "gd-met", "/api/v1/inbox")); got.Unread != 1 || !got.Notifications[0].Read {
		t.Errorf("after reading one: unread %d", got.Unread)
	}
	wantError(t, api.post(t, "gd-met", "/api/v1/inbox/N999999/read", nil), http.StatusNotFound, tocsin.CodeNotFound)
}

// A webhook is set by the organisation itself or the admin, with an
// http(s) URL without credentials; its secret is shown once.
func TestWebhookRegistration(t *testing.T) {
	api := newTestAPI(t)
	path := "/api/v1/organisations/gd-met/webhook"
	put := func(org string, body any) response {
		return api.do(t, request{Method: http.MethodPut, Path: path, Org: org, Body: body})
	}
	wantError(t, put("gd-cab", map[string]any{"url": "https://example.org/hook"}), http.StatusForbidden, tocsin.CodeForbidden)
	wantError(t, put("gx-health", map[string]any{"url": "https://example.org/hook"}), http.StatusForbidden, tocsin.CodeForbidden)
	for _, bad := range []string{"", "ftp://example.org/", "https://user:secret@example.org/", "gopher://x", "not a url"} {
		wantError(t, put("gd-met", map[string]any{"url": bad}), http.StatusUnprocessableEntity, tocsin.CodeValidation)
	}
	wantError(t, api.get(t, "gd-met", path), http.StatusNotFound, tocsin.CodeNotFound)

	res := put("gd-met", map[string]any{"url": "https://hooks.example.org/tocsin"})
	if res.Status != http.StatusOK {
		t.Fatal(res)
	}
	got := decode[map[string]any](t, res)
	secret, _ := got["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || got["url"] != "https://hooks.example.org/tocsin" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("PUT webhook = %s", res)
	}
	for _, who := range []string{"gd-met", "admin"} {
		res := api.get(t, who, path)
		if res.Status != http.StatusOK || strings.Contains(string(res.Body), secret) || strings.Contains(string(res.Body), "secret") {
			t.Errorf("GET webhook as %s shows the secret or fails: %s", who, res)
		}
	}
	wantError(t, api.get(t, "gd-cab", path), http.StatusForbidden, tocsin.CodeForbidden)

	again := decode[map[string]any](t, put("admin", map[string]any{"url": "https://hooks.example.org/v2"}))
	if again["secret"] == secret || again["secret"] == "" {
		t.Errorf("a new registration kept the old secret")
	}
	if res := api.do(t, request{Method: http.MethodDelete, Path: path, Org: "gd-met"}); res.Status != http.StatusNoContent {
		t.Errorf("DELETE webhook: %s", res)
	}
	wantError(t, api.get(t, "gd-met", path), http.StatusNotFound, tocsin.CodeNotFound)
}
