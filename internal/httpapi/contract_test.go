package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/tocsin-dev/tocsin/internal/testkit"
)

// registerXML lets openapi3filter read the XML bodies the document
// declares (CAP) as the strings their schemas say they are; it knows
// JSON, CSV and plain text of its own.
var registerXML = sync.OnceFunc(func() {
	for _, ct := range []string{"application/cap+xml", "application/xml", "text/xml", "application/atom+xml"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
})

// contract is an http.RoundTripper that checks every API response
// against the OpenAPI document the server serves, with kin-openapi: the
// route must be in the document, the status declared for it, the
// declared headers and the body valid by their schemas. It remembers
// which operations were exercised.
type contract struct {
	t      *testing.T
	next   http.RoundTripper
	router routers.Router
	doc    *openapi3.T
	base   string // the server, as request URLs start

	mu   sync.Mutex
	seen map[string]int // "METHOD /path/{template}" → responses checked; guarded by mu
}

// newContract loads the document the server at base serves, validates it
// as OpenAPI 3.1 and routes by it. kin-openapi v0.153 reads 3.1 as it is
// (type arrays, jsonSchemaDialect) and validates schemas with its JSON
// Schema 2020-12 validator when the document says 3.1; the one thing the
// test does to it is resolve the relative server URL "/api/v1" against
// the document's own address, as OpenAPI 3.1 (section 4.8.5) says a
// client does, so the router can match absolute request URLs.
func newContract(t *testing.T, api *testAPI) *contract {
	t.Helper()
	registerXML()
	res := api.get(t, "", "/api/v1/openapi.json")
	if res.Status != http.StatusOK {
		t.Fatalf("openapi.json: %s", res)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(res.Body)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	self, err := url.Parse(api.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Servers {
		u, err := url.Parse(s.URL)
		if err != nil {
			t.Fatalf("server URL %q: %v", s.URL, err)
		}
		s.URL = self.ResolveReference(u).String()
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("route by openapi.json: %v", err)
	}
	c := &contract{t: t, base: api.URL, next: api.client.Transport, router: router, doc: doc, seen: map[string]int{}}
	if c.next == nil {
		c.next = http.DefaultTransport
	}
	client := *api.client
	client.Transport = c
	api.client = &client
	return c
}

func (c *contract) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	res, err := c.next.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/api/v1/") {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	what := req.Method + " " + req.URL.RequestURI()

	route, params, err := c.router.FindRoute(req)
	if err != nil {
		// Only a deliberately unknown path may miss the document, and it
		// must answer the API's 404 (or 400 for a method not allowed).
		if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusBadRequest {
			c.t.Errorf("%s: not in openapi.json (%v) but answered %d", what, err, res.StatusCode)
		}
		return res, nil
	}
	key := route.Method + " " + route.Path
	c.mu.Lock()
	c.seen[key]++
	c.mu.Unlock()

	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if res.StatusCode < 300 {
		// What the server accepted, the document must accept too.
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
			c.t.Errorf("%s was accepted (%d) but openapi.json refuses the request: %v", what, res.StatusCode, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		c.t.Errorf("%s → %d does not match openapi.json: %v\nbody: %.800s", what, res.StatusCode, err, body)
	}
	return res, nil
}

// unexercised lists the document's operations no response was checked
// for.
func (c *contract) unexercised() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var missing []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			if c.seen[method+" "+path] == 0 {
				missing = append(missing, method+" "+path)
			}
		}
	}
	slices.Sort(missing)
	return missing
}

// A realistic session through every operation in openapi.json, each
// response (successes and the errors 400, 401, 403, 404, 409, 413, 415,
// 422) validated against the document the server serves; and every
// operation of the document exercised, so the document and the routes
// cannot drift apart.
func TestResponsesMatchOpenAPI(t *testing.T) {
	api := newWiredAPI(t)
	c := newContract(t, api)
	want := func(res response, status int) response {
		t.Helper()
		if res.Status != status {
			t.Fatalf("status %d, want %d: %s", res.Status, status, res)
		}
		return res
	}
	bc := func(id string, rest ...string) string { return broadcasts + "/" + id + strings.Join(rest, "") }
	reason := map[string]any{"reason": "改期"}

	// Public: the document, the calendar, regions.
	want(api.get(t, "", "/api/v1/openapi.json"), http.StatusOK)
	want(api.get(t, "", "/api/v1/calendar/earliest?filed=2026-09-18"), http.StatusOK)
	want(api.get(t, "", "/api/v1/calendar/earliest?filed=18/09/2026"), http.StatusUnprocessableEntity)
	want(api.get(t, "", "/api/v1/calendar/days?from=2026-09-28&to=2026-10-09"), http.StatusOK)
	want(api.get(t, "", "/api/v1/calendar/days?from=2026-10-09&to=2026-09-28"), http.StatusUnprocessableEntity)
	want(api.get(t, "", "/api/v1/regions"), http.StatusOK)
	want(api.get(t, "", "/api/v1/regions?parent=440000"), http.StatusOK)
	want(api.get(t, "", "/api/v1/regions?parent=999999"), http.StatusNotFound)

	// Filing, both kinds, and its refusals.
	pending := decode[broadcast](t, want(api.post(t, "gd-met", broadcasts, ordinary(onTime, "440100")), http.StatusCreated))
	keyed := request{Method: http.MethodPost, Path: broadcasts, Org: "gd-met", Body: ordinary(longAfter, "440100"),
		Header: map[string]string{"Idempotency-Key": "contract-1"}}
	toReject := decode[broadcast](t, want(api.do(t, keyed), http.StatusCreated))
	if res := want(api.do(t, keyed), http.StatusCreated); res.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("a replayed filing lacks Idempotent-Replayed: %v", res.Header)
	}
	toWithdraw := decode[broadcast](t, want(api.post(t, "gd-met", broadcasts, ordinary(longAfter, "440100")), http.StatusCreated))
	toCancel := decode[broadcast](t, want(api.post(t, "mem", broadcasts, ordinary(longAfter, "440000", "450000")), http.StatusCreated))
	em := decode[broadcast](t, want(api.post(t, "gd-met", broadcasts, emergency("440100")), http.StatusCreated))
	want(api.post(t, "gd-met", broadcasts, ordinary(tooEarly, "440100")), http.StatusUnprocessableEntity)
	want(api.post(t, "gd-met", broadcasts, with(ordinary(onTime, "440100"), "scope", []string{"999999"})), http.StatusUnprocessableEntity)
	want(api.post(t, "gz-em", broadcasts, ordinary(onTime, "440100")), http.StatusForbidden)
	want(api.post(t, "", broadcasts, ordinary(onTime, "440100")), http.StatusUnauthorized)
	want(api.post(t, "gd-met", broadcasts, "{not json"), http.StatusBadRequest)
	want(api.do(t, request{Method: http.MethodPost, Path: broadcasts, Org: "gd-met", Body: "%PDF-1.7",
		Header: map[string]string{"Content-Type": "application/pdf"}}), http.StatusUnsupportedMediaType)
	want(api.do(t, request{Method: http.MethodPost, Path: broadcasts, Org: "gd-met",
		Body: strings.Repeat(" ", 1<<20+1)}), http.StatusRequestEntityTooLarge)
	capAlert := api.get(t, "", bc(em.ID, "/cap"))
	want(capAlert, http.StatusOK)
	want(api.do(t, request{Method: http.MethodPost, Path: broadcasts, Org: "gd-met", Body: capAlert.Body,
		Header: map[string]string{"Content-Type": "application/cap+xml"}}), http.StatusCreated)

	// Reading.
	want(api.get(t, "gd-cab", broadcasts), http.StatusOK)
	want(api.get(t, "miit", broadcasts+"?status=pending_review&limit=2"), http.StatusOK)
	want(api.get(t, "miit", broadcasts+"?status=nonsense"), http.StatusUnprocessableEntity)
	want(api.get(t, "gd-met", bc(pending.ID)), http.StatusOK)
	want(api.get(t, "gd-cab", bc(em.ID)), http.StatusOK)
	want(api.get(t, "gx-health", bc(pending.ID)), http.StatusForbidden)
	want(api.get(t, "miit", bc("BC999999")), http.StatusNotFound)
	want(api.get(t, "", bc(pending.ID, "/cap")), http.StatusUnauthorized)
	want(api.get(t, "gd-met", bc(pending.ID, "/cap")), http.StatusOK)
	want(api.get(t, "gx-health", bc(pending.ID, "/cap")), http.StatusForbidden)
	want(api.get(t, "", bc("BC999999", "/cap")), http.StatusNotFound)

	// Review and the other transitions.
	want(api.post(t, "gx-cab", bc(pending.ID, "/approve"), map[string]any{}), http.StatusForbidden)
	want(api.post(t, "gd-cab", bc(pending.ID, "/approve"), map[string]any{}), http.StatusOK)
	want(api.post(t, "gd-cab", bc(pending.ID, "/approve"), map[string]any{}), http.StatusConflict)
	want(api.post(t, "gd-cab", bc(pending.ID, "/approve"), map[string]any{"force": true}), http.StatusBadRequest)
	want(api.post(t, "gd-cab", bc(toReject.ID, "/reject"), map[string]any{"reason_code": "content"}), http.StatusUnprocessableEntity)
	want(api.post(t, "gd-cab", bc(toReject.ID, "/reject"), map[string]any{"reason_code": "not_public_welfare", "reason": "商业推广"}), http.StatusOK)
	want(api.post(t, "gd-met", bc(toWithdraw.ID, "/withdraw"), map[string]any{}), http.StatusUnprocessableEntity)
	want(api.post(t, "gd-met", bc(toWithdraw.ID, "/withdraw"), reason), http.StatusOK)
	want(api.post(t, "gd-cab", bc(toCancel.ID, "/cancel"), reason), http.StatusForbidden)
	want(api.post(t, "miit", bc(toCancel.ID, "/cancel"), reason), http.StatusOK)
	want(api.post(t, "miit", bc(toCancel.ID, "/cancel"), reason), http.StatusConflict)
	want(api.post(t, "gd-cab", bc(em.ID, "/resend"), map[string]any{"provider": "cmcc"}), http.StatusOK)
	want(api.post(t, "gd-cab", bc(em.ID, "/resend"), map[string]any{"provider": "ctcc"}), http.StatusNotFound)
	want(api.post(t, "gd-cab", bc(em.ID, "/resend"), map[string]any{}), http.StatusUnprocessableEntity)
	correction := with(emergency("440100"), "content", "【广东省气象局】更正：台风“海燕”将于明晨登陆，请留在室内。")
	want(api.post(t, "gd-met", bc(em.ID, "/update"), correction), http.StatusCreated)
	want(api.post(t, "gx-health", bc(em.ID, "/update"), correction), http.StatusForbidden)
	want(api.post(t, "gd-met", bc(em.ID, "/post-hoc"), map[string]any{"report": "台风已登陆，短信已送达。"}), http.StatusOK)
	want(api.post(t, "gd-met", bc(pending.ID, "/post-hoc"), map[string]any{"report": "x"}), http.StatusConflict)
	want(api.post(t, "gd-cab", bc(em.ID, "/post-hoc/review"), map[string]any{"verdict": "maybe"}), http.StatusUnprocessableEntity)
	want(api.post(t, "gd-cab", bc(em.ID, "/post-hoc/review"), map[string]any{"verdict": "accepted"}), http.StatusOK)

	// The directory, providers, records, calendars, tokens.
	want(api.get(t, "admin", "/api/v1/organisations"), http.StatusOK)
	want(api.get(t, "miit", "/api/v1/organisations"), http.StatusForbidden)
	scMet := map[string]any{"id": "sc-met", "name": "Sichuan Meteorological Service", "name_zh": "四川省气象局",
		"role": "department", "level": "provincial", "jurisdiction": "510000", "sender_code": "12121510"}
	want(api.post(t, "admin", "/api/v1/organisations", scMet), http.StatusCreated)
	want(api.post(t, "admin", "/api/v1/organisations", with(scMet, "jurisdiction", "everywhere")), http.StatusUnprocessableEntity)
	want(api.get(t, "gd-cab", "/api/v1/providers"), http.StatusOK)
	want(api.post(t, "admin", "/api/v1/providers", map[string]any{"id": "sc-mobile", "name": "Sichuan Mobile", "regions": []string{"510000"}}), http.StatusCreated)
	want(api.post(t, "admin", "/api/v1/providers", map[string]any{"id": "tocsin", "name": "x", "regions": []string{"510000"}}), http.StatusUnprocessableEntity)
	want(api.post(t, "miit", "/api/v1/providers", map[string]any{"id": "x", "name": "x", "regions": []string{"510000"}}), http.StatusForbidden)
	want(api.get(t, "miit", "/api/v1/records?from=2026-09-01&to=2026-12-31"), http.StatusOK)
	want(api.get(t, "miit", "/api/v1/records?from=2026-09-01&to=2026-12-31&format=jsonl"), http.StatusOK)
	want(api.get(t, "miit", "/api/v1/records?from=2026-12-31&to=2026-09-01"), http.StatusUnprocessableEntity)
	want(api.get(t, "gd-met", "/api/v1/records?from=2026-09-01&to=2026-12-31"), http.StatusForbidden)
	want(api.post(t, "admin", "/api/v1/records/purge", map[string]any{"dry_run": true}), http.StatusOK)
	want(api.post(t, "miit", "/api/v1/records/purge", map[string]any{}), http.StatusForbidden)
	want(api.get(t, "admin", "/api/v1/calendars"), http.StatusOK)
	notice := func(org, path, ct string, body any) response {
		return api.do(t, request{Method: http.MethodPut, Path: path, Org: org, Body: body, Header: map[string]string{"Content-Type": ct}})
	}
	want(notice("admin", "/api/v1/calendars/2027?dry_run=true", "text/plain; charset=utf-8", testkit.Notice2027), http.StatusOK)
	want(notice("admin", "/api/v1/calendars/2027", "text/plain; charset=utf-8", testkit.Notice2027), http.StatusOK)
	want(notice("admin", "/api/v1/calendars/2028", "text/plain; charset=utf-8", testkit.Notice2027), http.StatusUnprocessableEntity)
	want(notice("admin", "/api/v1/calendars/2027", "application/pdf", "%PDF"), http.StatusUnsupportedMediaType)
	want(notice("miit", "/api/v1/calendars/2027", "text/plain", testkit.Notice2027), http.StatusForbidden)
	want(api.get(t, "admin", "/api/v1/calendars"), http.StatusOK)
	issued := decode[struct{ ID string }](t, want(api.post(t, "admin", "/api/v1/tokens",
		map[string]any{"org": "gd-met", "name": "alerting", "ttl": "24h"}), http.StatusCreated))
	want(api.post(t, "admin", "/api/v1/tokens", map[string]any{"org": "ghost"}), http.StatusNotFound)
	want(api.post(t, "gd-met", "/api/v1/tokens", map[string]any{"org": "gd-met"}), http.StatusForbidden)
	want(api.get(t, "admin", "/api/v1/tokens"), http.StatusOK)
	want(api.get(t, "admin", "/api/v1/tokens?org=gd-met"), http.StatusOK)
	want(api.do(t, request{Method: http.MethodDelete, Path: "/api/v1/tokens/" + issued.ID, Org: "admin"}), http.StatusNoContent)
	want(api.do(t, request{Method: http.MethodDelete, Path: "/api/v1/tokens/" + issued.ID, Org: "admin"}), http.StatusNotFound)

	// The inbox (the rejection told gd-met) and the webhook.
	inbox := decode[struct {
		Notifications []struct{ ID string }
	}](t, want(api.get(t, "gd-met", "/api/v1/inbox?limit=5"), http.StatusOK))
	if len(inbox.Notifications) == 0 {
		t.Fatal("gd-met's inbox is empty after a rejection")
	}
	want(api.get(t, "gd-met", "/api/v1/inbox?limit=x"), http.StatusUnprocessableEntity)
	want(api.post(t, "gd-met", "/api/v1/inbox/"+inbox.Notifications[0].ID+"/read", nil), http.StatusOK)
	want(api.post(t, "gd-met", "/api/v1/inbox/N999999/read", nil), http.StatusNotFound)
	hook := "/api/v1/organisations/gd-met/webhook"
	want(api.get(t, "gd-met", hook), http.StatusNotFound)
	want(api.do(t, request{Method: http.MethodPut, Path: hook, Org: "gd-met", Body: map[string]any{"url": "ftp://x"}}), http.StatusUnprocessableEntity)
	want(api.do(t, request{Method: http.MethodPut, Path: hook, Org: "gd-cab", Body: map[string]any{"url": "https://hooks.example.org/x"}}), http.StatusForbidden)
	want(api.do(t, request{Method: http.MethodPut, Path: hook, Org: "gd-met", Body: map[string]any{"url": "https://hooks.example.org/tocsin"}}), http.StatusOK)
	want(api.get(t, "admin", hook), http.StatusOK)
	want(api.do(t, request{Method: http.MethodDelete, Path: hook, Org: "gd-met"}), http.StatusNoContent)

	// Unknown paths answer the API's 404 and are not in the document.
	want(api.get(t, "miit", "/api/v1/nothing"), http.StatusNotFound)

	if missing := c.unexercised(); len(missing) > 0 {
		t.Errorf("openapi.json operations no response was checked for:\n%s", strings.Join(missing, "\n"))
	}
	c.mustRefuse(t, http.MethodGet, bc(pending.ID), http.StatusOK, `{"id": 7, "status": "pending_review"}`)
	c.mustRefuse(t, http.MethodGet, bc(pending.ID), http.StatusOK, `{"id": "BC000001", "status": "lost"}`)
	c.mustRefuse(t, http.MethodPost, bc(pending.ID, "/approve"), http.StatusForbidden, `{"error": {"message": "no code"}}`)
	c.mustRefuse(t, http.MethodGet, broadcasts, http.StatusTeapot, `{"broadcasts": []}`)
}

// mustRefuse checks that the contract is not vacuous: a response the
// document does not allow fails validation.
func (c *contract) mustRefuse(t *testing.T, method, path string, status int, body string) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status, Header: http.Header{"Content-Type": {jsonCT}, "X-Request-Id": {"x"}},
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes([]byte(body))
	if err := openapi3filter.ValidateResponse(req.Context(), out); err == nil {
		t.Errorf("%s %s → %d %s passes the contract", method, path, status, body)
	}
}
