package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/testkit"
)

// put sends body with its content type, as the calendar CLI and the
// admin page do.
func put(t *testing.T, url, token, contentType, body string) apiResult {
	t.Helper()
	res := callWith(t, http.MethodPut, url, token, contentType, body)
	return res
}

func TestCalendarWarnsBeforeTheGap(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators", "--now", "2026-11-15T10:00:00+08:00")
	r := call(t, "GET", s.base+"/readyz", "", "")
	if r.status != 200 {
		t.Fatalf("readyz %d %v", r.status, r.body)
	}
	warnings, _ := r.body["warnings"].([]any)
	if len(warnings) != 1 {
		t.Fatalf("warnings = %v, want one for 2027", r.body["warnings"])
	}
	w := warnings[0].(map[string]any)
	if w["year"] != float64(2027) || w["first_refused"] != "2026-12-18" || w["code"] != "calendar_missing" {
		t.Errorf("warning = %v, want 2027 and 2026-12-18", w)
	}
	if !strings.Contains(w["message"].(string), "2027") || !strings.Contains(w["message"].(string), "2026-12-18") {
		t.Errorf("message %q names neither the year nor the date", w["message"])
	}
}

func TestCalendarLoadedAtRunTime(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators", "--now", "2026-12-28T10:00:00+08:00")
	tok := demoTokens(t, dir)
	notice := testkit.Notice2027
	calendars := s.base + "/api/v1/calendars/2027"

	if r := call(t, "GET", s.base+"/api/v1/calendar/earliest?filed=2026-12-18", tok["gd-met"], ""); r.status != 422 {
		t.Fatalf("earliest for 2026-12-18 without 2027: %d %v", r.status, r.body)
	}
	emergency := call(t, "POST", s.base+"/api/v1/broadcasts", tok["gd-met"],
		`{"title":"寒潮","content":"【广东省气象局】寒潮蓝色预警：请注意防寒保暖。","scope":["440100"],"emergency":{"type":"natural_disaster","event":"cold wave","level":"blue"}}`)
	if emergency.status != 201 {
		t.Fatalf("emergency: %d %v", emergency.status, emergency.body)
	}
	id := emergency.body["id"].(string)
	postHoc := func() map[string]any {
		return call(t, "GET", s.base+"/api/v1/broadcasts/"+id, tok["gd-met"], "").body["post_hoc"].(map[string]any)
	}
	if p := postHoc(); p["due_date"] != "" || p["due_date_pending"] != true {
		t.Fatalf("post-hoc before 2027 is loaded = %v, want the due date pending", p)
	}

	bad := strings.Replace(notice, "1月31日（周日）", "2月1日（周一）", 1)
	refusals := []struct {
		name, token, contentType, body string
		status                         int
		want                           string
	}{
		{"a regulator", tok["gd-cab"], "text/plain", notice, 403, "forbidden"},
		{"a make-up day on a Monday", tok["admin"], "text/plain", bad, 422, "validation_failed"},
		{"not a notice", tok["admin"], "text/plain", "2027年放假安排：大家都放假。", 422, "validation_failed"},
		{"another year's path", tok["admin"], "text/plain", notice, 422, "validation_failed"},
		{"a PDF", tok["admin"], "application/pdf", notice, 415, "unsupported_media_type"},
	}
	for _, tt := range refusals {
		url := calendars
		if tt.name == "another year's path" {
			url = s.base + "/api/v1/calendars/2028"
		}
		r := put(t, url, tt.token, tt.contentType, tt.body)
		if r.status != tt.status || r.body["error"].(map[string]any)["code"] != tt.want {
			t.Errorf("%s: %d %v, want %d %s", tt.name, r.status, r.body, tt.status, tt.want)
		}
	}
	dry := put(t, calendars+"?dry_run=true", tok["admin"], "text/plain", notice)
	if dry.status != 200 || dry.body["loaded"] != false || len(dry.body["changes"].([]any)) == 0 {
		t.Fatalf("dry run: %d %v", dry.status, dry.body)
	}
	if r := call(t, "GET", s.base+"/api/v1/calendar/earliest?filed=2026-12-18", tok["gd-met"], ""); r.status != 422 {
		t.Fatalf("a dry run loaded 2027: %d %v", r.status, r.body)
	}

	loaded := put(t, calendars, tok["admin"], "text/plain; charset=utf-8", notice)
	if loaded.status != 200 || loaded.body["loaded"] != true {
		t.Fatalf("load: %d %v", loaded.status, loaded.body)
	}
	r := call(t, "GET", s.base+"/api/v1/calendar/earliest?filed=2026-12-18", tok["gd-met"], "")
	if r.status != 200 || r.body["earliest_send_date"] != "2027-01-04" {
		t.Fatalf("earliest for 2026-12-18 after loading 2027: %d %v, want 2027-01-04", r.status, r.body)
	}
	if p := postHoc(); p["due_date"] != "2027-01-05" || p["due_date_pending"] == true {
		t.Errorf("post-hoc after 2027 is loaded = %v, want due 2027-01-05", p)
	}
	if r := call(t, "GET", s.base+"/readyz", "", ""); len(r.body["warnings"].([]any)) != 0 {
		t.Errorf("warnings after loading 2027: %v", r.body["warnings"])
	}
	list := call(t, "GET", s.base+"/api/v1/calendars", tok["admin"], "")
	var found map[string]any
	for _, c := range list.body["calendars"].([]any) {
		if c := c.(map[string]any); c["year"] == float64(2027) {
			found = c
		}
	}
	if found == nil || found["origin"] != "loaded" || found["loaded_at"] == nil || !strings.HasPrefix(found["loaded_by"].(string), "admin") {
		t.Errorf("2027 in the list = %v", found)
	}

	// Loaded for good: the next start has it.
	s.stop()
	s = startServer(t, dir, "demo", "--no-simulators", "--now", "2026-12-28T10:00:00+08:00")
	if r := call(t, "GET", s.base+"/api/v1/calendar/earliest?filed=2026-12-18", tok["gd-met"], ""); r.body["earliest_send_date"] != "2027-01-04" {
		t.Errorf("after a restart: %d %v", r.status, r.body)
	}
}

// The CLI loads a notice into the running server.
func TestCalendarImportThroughTheServer(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators")
	var out strings.Builder
	file := filepath.Join(t.TempDir(), "notice.txt")
	if err := os.WriteFile(file, []byte(testkit.Notice2027), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"calendar", "import", file, "--server", s.base, "--data", dir}, noEnv, &out, &out)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "2027 loaded") || !strings.Contains(out.String(), "2027-02-05 Fri") {
		t.Errorf("output:\n%s", out.String())
	}
	tok := demoTokens(t, dir)
	if r := call(t, "GET", s.base+"/api/v1/calendar/earliest?filed=2026-12-18", tok["gd-met"], ""); r.body["earliest_send_date"] != "2027-01-04" {
		t.Errorf("earliest after the CLI's import: %d %v", r.status, r.body)
	}
}
