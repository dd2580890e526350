package httpapi_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/demo"
	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/metrics"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// testNow is Friday 2026-09-18 10:00 in Asia/Shanghai. Ten working days on
// (with the 2026-09-20 make-up day, Mid-Autumn and National Day) is
// 2026-10-09.
var testNow = time.Date(2026, 9, 18, 10, 0, 0, 0, tocsin.Shanghai)

const (
	earliest   = "2026-10-09"
	onTime     = "2026-10-09T09:00:00+08:00"
	tooEarly   = "2026-10-08T09:00:00+08:00"
	longAfter  = "2026-11-02T09:00:00+08:00"
	tokenTTL   = time.Hour
	jsonCT     = "application/json"
	broadcasts = "/api/v1/broadcasts"
)

// testAPI is a Tocsin API served over real HTTP from real parts.
type testAPI struct {
	URL     string
	Keys    *auth.Keys
	Store   *boltstore.DB
	Service *tocsin.Service
	client  *http.Client
}

// newTestAPI wires the API the way cmd/tocsin/serve.go does, with a bbolt
// store in a temporary folder and the service clock fixed at testNow, and
// seeds the demo directory. configure, if given, sets more of the server
// before it serves.
func newTestAPI(t *testing.T, configure ...func(*httpapi.Server)) *testAPI {
	t.Helper()
	log := testkit.Logger(t)
	keys, err := auth.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	store := testkit.MustStore(t, log)
	svc := testkit.MustService(t, store, testkit.NewClock(testNow))
	testkit.MustSeed(t, svc, testkit.Directory)
	api := &httpapi.Server{
		Service:  svc,
		Verifier: keys.Verifier(time.Now), // as serve: tokens expire in real time
		Regions:  svc.Regions,
		Days:     testkit.MustCalendar(t),
		Log:      log,
		Metrics:  metrics.New(),
		Ready: func(ctx context.Context) httpapi.Readiness {
			details := map[string]any{}
			err := store.View(ctx, func(tx tocsin.ReadTx) error {
				n, err := tx.OutboxLen()
				details["outbox_backlog"] = n
				return err
			})
			if err != nil {
				return httpapi.Readiness{Reasons: []string{err.Error()}}
			}
			return httpapi.Readiness{Details: details}
		},
		Passwords: auth.HashPassword,
		Tokens:    keys,
	}
	for _, c := range configure {
		c(api)
	}

	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &testAPI{URL: srv.URL, Keys: keys, Store: store, Service: svc, client: srv.Client()}
}

// token issues a stored service token for an organisation in the store.
func (api *testAPI) token(t *testing.T, org string) string {
	t.Helper()
	return testkit.MustToken(t, api.Service, api.Keys, org, tokenTTL)
}

// response is what one request got back.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body))
}

// request is one API call. Body is sent as is if it is a string, []byte or
// io.Reader, and as JSON otherwise.
type request struct {
	Method string
	Path   string
	Org    string // mint a token for this organisation; "" sends none
	Auth   string // a raw Authorization header, overriding Org
	Body   any
	Header map[string]string
}

func (api *testAPI) do(t *testing.T, req request) response {
	t.Helper()
	if req.Auth == "" && req.Org != "" {
		req.Auth = "Bearer " + api.token(t, req.Org)
	}
	res, err := api.send(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// send makes the request; unlike do it may be called from any goroutine.
// It does not mint tokens: set req.Auth.
func (api *testAPI) send(req request) (response, error) {
	var body io.Reader
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	case io.Reader:
		body = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		body = bytes.NewReader(data)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
	}
	r, err := http.NewRequest(method, api.URL+req.Path, body)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		r.Header.Set("Content-Type", jsonCT)
	}
	if req.Auth != "" {
		r.Header.Set("Authorization", req.Auth)
	}
	for k, v := range req.Header {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	res, err := api.client.Do(r)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, req.Path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: reading body: %w", method, req.Path, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: data}, nil
}

// get is a GET as org.
func (api *testAPI) get(t *testing.T, org, path string) response {
	t.Helper()
	return api.do(t, request{Method: http.MethodGet, Path: path, Org: org})
}

// post is a POST of body as org.
func (api *testAPI) post(t *testing.T, org, path string, body any) response {
	t.Helper()
	return api.do(t, request{Method: http.MethodPost, Path: path, Org: org, Body: body})
}

// decode unmarshals a response body, failing the test on any error.
func decode[T any](t *testing.T, res response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(res.Body, &v); err != nil {
		t.Fatalf("response %s is not the JSON expected: %v", res, err)
	}
	return v
}

// apiError is the body of every error response.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Details are every field of the error object.
	Details map[string]any `json:"-"`
}

// wantError checks that res is an error with this status and code, in the
// one shape every API error has, and returns it.
func wantError(t *testing.T, res response, status int, code tocsin.Code) apiError {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status = %d, want %d; body %s", res.Status, status, res.Body)
	}
	return checkErrorBody(t, res, code)
}

func checkErrorBody(t *testing.T, res response, code tocsin.Code) apiError {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, jsonCT) {
		t.Errorf("error Content-Type = %q, want JSON; body %s", ct, res.Body)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(res.Body, &outer); err != nil {
		t.Fatalf("error body %q is not a JSON object: %v", res.Body, err)
	}
	if len(outer) != 1 || outer["error"] == nil {
		t.Fatalf("error body %s, want exactly {\"error\": {...}}", res.Body)
	}
	var e apiError
	if err := json.Unmarshal(outer["error"], &e); err != nil {
		t.Fatalf("error object %s: %v", outer["error"], err)
	}
	if err := json.Unmarshal(outer["error"], &e.Details); err != nil {
		t.Fatalf("error object %s: %v", outer["error"], err)
	}
	if e.Code != string(code) {
		t.Errorf("error.code = %q, want %q; body %s", e.Code, code, res.Body)
	}
	if strings.TrimSpace(e.Message) == "" {
		t.Errorf("error.message is empty; body %s", res.Body)
	}
	return e
}

// broadcast is a broadcast as the API returns it.
type broadcast = httpapi.BroadcastView

func wantBroadcast(t *testing.T, res response, status int, wantStatus tocsin.Status) broadcast {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status = %d, want %d; body %s", res.Status, status, res.Body)
	}
	b := decode[broadcast](t, res)
	if b.Broadcast == nil || b.ID == "" {
		t.Fatalf("response %s has no broadcast id", res)
	}
	if b.Status != wantStatus {
		t.Fatalf("broadcast status = %q, want %q; body %s", b.Status, wantStatus, res.Body)
	}
	return b
}

// ordinary is a non-emergency filing for scope, sent at sendAt.
func ordinary(sendAt string, scope ...string) map[string]any {
	return map[string]any{
		"title":   "国庆假期出行提示",
		"content": "【广东省气象局】国庆假期请关注天气预报，合理安排出行。",
		"scope":   scope,
		"send_at": sendAt,
	}
}

// emergency is an emergency filing for scope, sent at once.
func emergency(scope ...string) map[string]any {
	return map[string]any{
		"title":     "台风红色预警",
		"content":   "【广东省气象局】台风“海燕”将于今夜登陆，请留在室内，远离海边。",
		"scope":     scope,
		"emergency": map[string]any{"type": "natural_disaster", "event": "typhoon", "level": "red"},
	}
}

// file files body as org and returns the broadcast, which must be created.
func (api *testAPI) file(t *testing.T, org string, body map[string]any) broadcast {
	t.Helper()
	res := api.post(t, org, broadcasts, body)
	want := tocsin.StatusPendingReview
	if body["emergency"] != nil {
		want = tocsin.StatusDispatching
	}
	return wantBroadcast(t, res, http.StatusCreated, want)
}

// getBroadcast reads broadcast id as org.
func (api *testAPI) getBroadcast(t *testing.T, org, id string) broadcast {
	t.Helper()
	res := api.get(t, org, broadcasts+"/"+id)
	if res.Status != http.StatusOK {
		t.Fatalf("get %s: %s", id, res)
	}
	return decode[broadcast](t, res)
}

func (api *testAPI) outboxBacklog(t *testing.T) int {
	t.Helper()
	res := api.get(t, "", "/readyz")
	if res.Status != http.StatusOK {
		t.Fatalf("readyz: %s", res)
	}
	v := decode[map[string]any](t, res)
	n, ok := v["outbox_backlog"].(float64)
	if !ok {
		t.Fatalf("readyz %s has no numeric outbox_backlog", res)
	}
	return int(n)
}

func providerIDs(b broadcast) []string {
	var ids []string
	for _, p := range b.Providers {
		ids = append(ids, p.Provider)
	}
	slices.Sort(ids)
	return ids
}

func TestFileBroadcast(t *testing.T) {
	api := newTestAPI(t)
	tests := []struct {
		name   string
		org    string
		body   any
		status int
		code   tocsin.Code                                  // for errors
		check  func(t *testing.T, res response, e apiError) // optional, for errors
		ok     func(t *testing.T, res response, b broadcast)
	}{
		{
			name: "late non-emergency", org: "gd-met", body: ordinary(tooEarly, "440100"),
			status: http.StatusUnprocessableEntity, code: tocsin.CodeTooLate,
			check: func(t *testing.T, res response, e apiError) {
				if e.Details["earliest_send_date"] != earliest {
					t.Errorf("earliest_send_date = %v, want %s", e.Details["earliest_send_date"], earliest)
				}
				if !strings.Contains(e.Message, earliest) {
					t.Errorf("message %q does not name %s", e.Message, earliest)
				}
			},
		},
		{
			// 2026-10-08T23:30 in Shanghai is still the 8th there.
			name: "late by Shanghai date though the 9th in UTC+9", org: "gd-met",
			body:   ordinary("2026-10-09T00:30:00+09:00", "440100"),
			status: http.StatusUnprocessableEntity, code: tocsin.CodeTooLate,
		},
		{
			name: "on the earliest date", org: "gd-met", body: ordinary(onTime, "440100"),
			status: http.StatusCreated,
			ok: func(t *testing.T, res response, b broadcast) {
				if b.Status != tocsin.StatusPendingReview {
					t.Errorf("status = %q, want pending_review", b.Status)
				}
				if loc := res.Header.Get("Location"); loc != broadcasts+"/"+b.ID {
					t.Errorf("Location = %q, want %s/%s", loc, broadcasts, b.ID)
				}
				if b.EarliestSendDate != earliest {
					t.Errorf("earliest_send_date = %q, want %s", b.EarliestSendDate, earliest)
				}
				if !b.FiledAt.Equal(testNow) {
					t.Errorf("filed_at = %v, want the server clock %v", b.FiledAt, testNow)
				}
				if b.Department != "gd-met" || b.SenderCode != "12379440" || b.Agency != "广东省气象局" {
					t.Errorf("department, sender code, agency = %q, %q, %q", b.Department, b.SenderCode, b.Agency)
				}
				if len(b.Regions) != 1 || b.Regions[0] != (httpapi.RegionView{Code: "440100", Name: "广州市"}) {
					t.Errorf("regions = %+v, want 440100 广州市", b.Regions)
				}
				if len(b.Providers) != 0 {
					t.Errorf("providers = %+v before review, want none", b.Providers)
				}
			},
		},
		{
			// 2026-10-08T16:30Z is 2026-10-09 00:30 in Shanghai.
			name: "on time by Shanghai date though the 8th in UTC", org: "gd-met",
			body: ordinary("2026-10-08T16:30:00Z", "440100"), status: http.StatusCreated,
		},
		{
			name: "emergency is dispatched at once", org: "gd-met", body: emergency("440100"),
			status: http.StatusCreated,
			ok: func(t *testing.T, res response, b broadcast) {
				if b.Status != tocsin.StatusDispatching {
					t.Fatalf("status = %q, want dispatching", b.Status)
				}
				if got := providerIDs(b); !slices.Equal(got, []string{"cmcc", "cucc"}) {
					t.Errorf("providers = %v, want cmcc and cucc", got)
				}
				for _, p := range b.Providers {
					if p.Status != tocsin.DeliveryQueued || !slices.Equal(p.Regions, []string{"440100"}) {
						t.Errorf("provider %s: status %q regions %v, want queued for 440100", p.Provider, p.Status, p.Regions)
					}
				}
				if b.EarliestSendDate != "" {
					t.Errorf("emergency has earliest_send_date %q", b.EarliestSendDate)
				}
				if b.PostHoc == nil || b.PostHoc.Status != tocsin.PostHocDue || b.PostHoc.DueDate == "" {
					t.Errorf("post_hoc = %+v, want report_due with a due date", b.PostHoc)
				}
				if b.Review != nil {
					t.Errorf("emergency was reviewed: %+v", b.Review)
				}
			},
		},
		{
			name: "emergency in Guangxi goes to its providers", org: "gx-health", body: emergency("450100"),
			status: http.StatusCreated,
			ok: func(t *testing.T, res response, b broadcast) {
				if got := providerIDs(b); !slices.Equal(got, []string{"cmcc", "ctcc"}) {
					t.Errorf("providers = %v, want cmcc and ctcc", got)
				}
			},
		},
		{
			name: "national department across provinces", org: "mem", body: ordinary(onTime, "440000", "450000"),
			status: http.StatusCreated,
		},
		{
			name: "prefecture department may not file", org: "gz-em", body: ordinary(onTime, "440100"),
			status: http.StatusForbidden, code: tocsin.CodeForbidden,
		},
		{
			name: "prefecture department may not file an emergency either", org: "gz-em", body: emergency("440100"),
			status: http.StatusForbidden, code: tocsin.CodeForbidden,
		},
		{
			name: "provincial department outside its province", org: "gd-met", body: ordinary(onTime, "450100"),
			status: http.StatusForbidden, code: tocsin.CodeForbidden,
			check: func(t *testing.T, res response, e apiError) {
				if !strings.Contains(e.Message, "450100") {
					t.Errorf("message %q does not name the region", e.Message)
				}
			},
		},
		{
			name: "unknown region", org: "gd-met", body: ordinary(onTime, "440100", "999999"),
			status: http.StatusUnprocessableEntity, code: tocsin.CodeUnknownRegion,
			check: func(t *testing.T, res response, e apiError) {
				if !strings.Contains(e.Message, "999999") || e.Details["region"] != "999999" {
					t.Errorf("error %s does not name 999999", res.Body)
				}
			},
		},
		{
			name: "regulator may not file", org: "gd-cab", body: ordinary(onTime, "440100"),
			status: http.StatusForbidden, code: tocsin.CodeForbidden,
		},
		{
			name: "admin may not file", org: "admin", body: ordinary(onTime, "440100"),
			status: http.StatusForbidden, code: tocsin.CodeForbidden,
		},
		{
			name: "missing send_at", org: "gd-met",
			body:   map[string]any{"title": "t", "content": "c", "scope": []string{"440100"}},
			status: http.StatusUnprocessableEntity, code: tocsin.CodeValidation,
		},
		{
			name: "send_at in the past", org: "gd-met", body: ordinary("2026-09-01T09:00:00+08:00", "440100"),
			status: http.StatusUnprocessableEntity, code: tocsin.CodeValidation,
		},
		{
			name: "empty scope", org: "gd-met", body: ordinary(onTime),
			status: http.StatusUnprocessableEntity, code: tocsin.CodeValidation,
		},
		{
			name: "blank title", org: "gd-met",
			body:   map[string]any{"title": "  ", "content": "c", "scope": []string{"440100"}, "send_at": onTime},
			status: http.StatusUnprocessableEntity, code: tocsin.CodeValidation,
		},
		{
			name: "bad warning level", org: "gd-met",
			body: map[string]any{"title": "t", "content": "c", "scope": []string{"440100"},
				"emergency": map[string]any{"type": "natural_disaster", "event": "typhoon", "level": "purple"}},
			status: http.StatusUnprocessableEntity, code: tocsin.CodeValidation,
		},
		{
			name: "send_until before send_at", org: "gd-met",
			body: map[string]any{"title": "t", "content": "c", "scope": []string{"440100"},
				"send_at": longAfter, "send_until": onTime},
			status: http.StatusUnprocessableEntity, code: tocsin.CodeValidation,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := api.post(t, tt.org, broadcasts, tt.body)
			if tt.code != "" {
				e := wantError(t, res, tt.status, tt.code)
				if tt.check != nil {
					tt.check(t, res, e)
				}
				return
			}
			if res.Status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", res.Status, tt.status, res.Body)
			}
			b := decode[broadcast](t, res)
			if tt.ok != nil {
				tt.ok(t, res, b)
			}
			// What was created reads back the same at its Location.
			got := api.get(t, tt.org, res.Header.Get("Location"))
			if got.Status != http.StatusOK {
				t.Fatalf("GET Location: %s", got)
			}
			if g := decode[broadcast](t, got); g.ID != b.ID || g.Status != b.Status {
				t.Errorf("GET Location = %s %s, want %s %s", g.ID, g.Status, b.ID, b.Status)
			}
		})
	}
}

func TestApprove(t *testing.T) {
	api := newTestAPI(t)
	tests := []struct {
		name   string
		filer  string
		scope  []string
		by     string
		status int
		code   tocsin.Code
	}{
		{"other province's regulator", "gd-met", []string{"440100"}, "gx-cab", http.StatusForbidden, tocsin.CodeForbidden},
		{"own province's regulator", "gd-met", []string{"440100"}, "gd-cab", http.StatusOK, ""},
		{"MIIT", "gd-met", []string{"440100"}, "miit", http.StatusOK, ""},
		{"department may not approve", "gd-met", []string{"440100"}, "gd-met", http.StatusForbidden, tocsin.CodeForbidden},
		{"admin may not approve", "gd-met", []string{"440100"}, "admin", http.StatusForbidden, tocsin.CodeForbidden},
		{"cross-province by a provincial regulator", "mem", []string{"440000", "450000"}, "gd-cab", http.StatusForbidden, tocsin.CodeForbidden},
		{"cross-province by MIIT", "mem", []string{"440000", "450000"}, "miit", http.StatusOK, ""},
		{"national department inside one province", "mem", []string{"450100"}, "gx-cab", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := api.file(t, tt.filer, ordinary(longAfter, tt.scope...))
			res := api.post(t, tt.by, broadcasts+"/"+b.ID+"/approve", nil)
			if tt.code != "" {
				wantError(t, res, tt.status, tt.code)
				after := wantBroadcast(t, api.get(t, tt.filer, broadcasts+"/"+b.ID), http.StatusOK, tocsin.StatusPendingReview)
				if after.Review != nil {
					t.Errorf("refused approval left a review: %+v", after.Review)
				}
				return
			}
			got := wantBroadcast(t, res, tt.status, tocsin.StatusApproved)
			if got.Review == nil || got.Review.Decision != tocsin.DecisionApproved || got.Review.Regulator != tt.by {
				t.Errorf("review = %+v, want approved by %s", got.Review, tt.by)
			}
			// Approving twice is a conflict, not a second approval.
			wantError(t, api.post(t, tt.by, broadcasts+"/"+b.ID+"/approve", map[string]any{}), http.StatusConflict, tocsin.CodeConflict)
		})
	}

	t.Run("unknown broadcast", func(t *testing.T) {
		wantError(t, api.post(t, "miit", broadcasts+"/BC999999/approve", nil), http.StatusNotFound, tocsin.CodeNotFound)
	})
	t.Run("approve with an unknown body field", func(t *testing.T) {
		b := api.file(t, "gd-met", ordinary(longAfter, "440100"))
		wantError(t, api.post(t, "gd-cab", broadcasts+"/"+b.ID+"/approve", map[string]any{"force": true}),
			http.StatusBadRequest, tocsin.CodeInvalid)
	})
	t.Run("emergency needs no approval", func(t *testing.T) {
		b := api.file(t, "gd-met", emergency("440100"))
		wantError(t, api.post(t, "gd-cab", broadcasts+"/"+b.ID+"/approve", nil), http.StatusConflict, tocsin.CodeConflict)
	})
}

func TestReject(t *testing.T) {
	api := newTestAPI(t)
	tests := []struct {
		name   string
		by     string
		body   any
		status int
		code   tocsin.Code
	}{
		{"no body", "gd-cab", nil, http.StatusUnprocessableEntity, tocsin.CodeReasonRequired},
		{"empty object", "gd-cab", map[string]any{}, http.StatusUnprocessableEntity, tocsin.CodeReasonRequired},
		{"reason_code without reason", "gd-cab", map[string]any{"reason_code": "not_public_welfare"}, http.StatusUnprocessableEntity, tocsin.CodeReasonRequired},
		{"blank reason", "gd-cab", map[string]any{"reason_code": "content", "reason": "   "}, http.StatusUnprocessableEntity, tocsin.CodeReasonRequired},
		{"reason without reason_code", "gd-cab", map[string]any{"reason": "commercial"}, http.StatusUnprocessableEntity, tocsin.CodeReasonRequired},
		{"unknown reason_code", "gd-cab", map[string]any{"reason_code": "dislike", "reason": "x"}, http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"other province's regulator", "gx-cab", map[string]any{"reason_code": "content", "reason": "x"}, http.StatusForbidden, tocsin.CodeForbidden},
		{"department", "gd-met", map[string]any{"reason_code": "content", "reason": "x"}, http.StatusForbidden, tocsin.CodeForbidden},
		{"with reason", "gd-cab", map[string]any{"reason_code": "not_public_welfare", "reason": "内容为商业推广，不属于公益短信。"}, http.StatusOK, ""},
		{"by MIIT", "miit", map[string]any{"reason_code": "timing", "reason": "send after the holiday"}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := api.file(t, "gd-met", ordinary(longAfter, "440100"))
			res := api.post(t, tt.by, broadcasts+"/"+b.ID+"/reject", tt.body)
			if tt.code != "" {
				wantError(t, res, tt.status, tt.code)
				wantBroadcast(t, api.get(t, "gd-met", broadcasts+"/"+b.ID), http.StatusOK, tocsin.StatusPendingReview)
				return
			}
			wantBroadcast(t, res, tt.status, tocsin.StatusRejected)
			// The department reads the reason back (Article 17).
			got := wantBroadcast(t, api.get(t, "gd-met", broadcasts+"/"+b.ID), http.StatusOK, tocsin.StatusRejected)
			body := tt.body.(map[string]any)
			if got.Review == nil || got.Review.Decision != tocsin.DecisionRejected ||
				got.Review.Reason != body["reason"] || string(got.Review.ReasonCode) != body["reason_code"] ||
				got.Review.Regulator != tt.by {
				t.Errorf("review = %+v, want rejected by %s with %v", got.Review, tt.by, body)
			}
			// A rejected filing can be neither approved nor rejected again.
			wantError(t, api.post(t, "miit", broadcasts+"/"+b.ID+"/approve", nil), http.StatusConflict, tocsin.CodeConflict)
			wantError(t, api.post(t, "miit", broadcasts+"/"+b.ID+"/reject", body), http.StatusConflict, tocsin.CodeConflict)
		})
	}
}

// hs256 signs claims with HMAC-SHA256 under key, the classic algorithm
// confusion attack on a verifier that takes its key from the token.
func hs256(t *testing.T, claims jwt.Claims, key []byte) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims(org string, exp time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": auth.Issuer, "aud": auth.Audience, "sub": org,
		"exp": exp.Unix(), "iat": time.Now().Unix(),
		"role": "regulator", "org": org, "level": "national", "jur": "national",
	}
}

func TestAuthentication(t *testing.T) {
	api := newTestAPI(t)
	b := api.file(t, "gd-met", ordinary(longAfter, "440100"))

	expired, err := api.Keys.Issue(testkit.Actor(t, "miit"), time.Now().Add(-2*time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Issue(testkit.Actor(t, "miit"), time.Now(), tokenTTL)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(api.Keys.Public)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	seg := func(v any) string {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(data)
	}
	exp := time.Now().Add(time.Hour)
	algNone := seg(map[string]string{"alg": "none", "typ": "JWT"}) + "." + seg(validClaims("miit", exp)) + "."
	signed := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(api.Keys.Private)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withoutClaim := func(key string) jwt.MapClaims {
		c := validClaims("miit", exp)
		delete(c, key)
		return c
	}
	withClaim := func(key string, v any) jwt.MapClaims {
		c := validClaims("miit", exp)
		c[key] = v
		return c
	}
	good, goodID := testkit.MustTokenID(t, api.Service, api.Keys, "miit", tokenTTL)
	// A token whose signature is another token's: valid parts, wrong pairing.
	parts := strings.Split(good, ".")
	spliced := parts[0] + "." + seg(withClaim("org", "admin")) + "." + parts[2]

	tests := []struct {
		name   string
		header string // the whole Authorization header; "" sends none
		status int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"basic auth", "Basic " + base64.StdEncoding.EncodeToString([]byte("miit:tocsin-demo")), http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"garbage", "Bearer not.a.jwt", http.StatusUnauthorized},
		{"expired", "Bearer " + expired, http.StatusUnauthorized},
		{"alg none", "Bearer " + algNone, http.StatusUnauthorized},
		{"alg none without trailing dot", "Bearer " + strings.TrimSuffix(algNone, "."), http.StatusUnauthorized},
		{"HS256 keyed with the public key bytes", "Bearer " + hs256(t, validClaims("miit", exp), api.Keys.Public), http.StatusUnauthorized},
		{"HS256 keyed with the public key PEM", "Bearer " + hs256(t, validClaims("miit", exp), pubPEM), http.StatusUnauthorized},
		{"another key", "Bearer " + foreign, http.StatusUnauthorized},
		{"tampered claims", "Bearer " + spliced, http.StatusUnauthorized},
		{"wrong issuer", "Bearer " + signed(withClaim("iss", "someone")), http.StatusUnauthorized},
		{"wrong audience", "Bearer " + signed(withClaim("aud", "other")), http.StatusUnauthorized},
		{"no expiry", "Bearer " + signed(withoutClaim("exp")), http.StatusUnauthorized},
		{"not yet valid", "Bearer " + signed(withClaim("nbf", time.Now().Add(time.Hour).Unix())), http.StatusUnauthorized},
		{"unknown role", "Bearer " + signed(withClaim("role", "root")), http.StatusUnauthorized},
		{"provider role", "Bearer " + signed(withClaim("role", "provider")), http.StatusUnauthorized},
		{"bad jurisdiction", "Bearer " + signed(withClaim("jur", "everywhere")), http.StatusUnauthorized},
		{"valid", "Bearer " + good, http.StatusOK},
		// The auth scheme is case-insensitive (RFC 9110, section 11.1).
		{"valid, lower-case scheme", "bearer " + good, http.StatusOK},
		{"valid, upper-case scheme", "BEARER " + good, http.StatusOK},
		// Claims name a stored credential by "jti"; a well-signed token
		// whose credential was never stored is refused.
		{"valid, hand-made claims", "Bearer " + signed(withClaim("jti", goodID)), http.StatusOK},
		{"hand-made claims, no credential", "Bearer " + signed(validClaims("miit", exp)), http.StatusUnauthorized},
		{"hand-made claims, unknown credential", "Bearer " + signed(withClaim("jti", "never-issued")), http.StatusUnauthorized},
		{"another organisation's credential", "Bearer " + signed(jwt.MapClaims(with(withClaim("jti", goodID), "org", "gd-cab"))), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{broadcasts, broadcasts + "/" + b.ID} {
				res := api.do(t, request{Path: path, Auth: tt.header})
				if tt.status == http.StatusOK {
					if res.Status != http.StatusOK {
						t.Fatalf("GET %s: %s", path, res)
					}
					continue
				}
				wantError(t, res, tt.status, tocsin.CodeUnauthorized)
				if h := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", h)
				}
			}
			// A bad token never files anything.
			if tt.status != http.StatusOK {
				res := api.do(t, request{Method: http.MethodPost, Path: broadcasts, Auth: tt.header, Body: ordinary(longAfter, "440100")})
				wantError(t, res, tt.status, tocsin.CodeUnauthorized)
			}
		})
	}

	t.Run("every protected route", func(t *testing.T) {
		for _, route := range []struct{ method, path string }{
			{"GET", broadcasts}, {"POST", broadcasts}, {"GET", broadcasts + "/" + b.ID},
			{"POST", broadcasts + "/" + b.ID + "/approve"}, {"POST", broadcasts + "/" + b.ID + "/reject"},
			{"POST", broadcasts + "/" + b.ID + "/withdraw"}, {"POST", broadcasts + "/" + b.ID + "/cancel"},
			{"POST", broadcasts + "/" + b.ID + "/post-hoc"}, {"POST", broadcasts + "/" + b.ID + "/post-hoc/review"},
			{"GET", "/api/v1/organisations"}, {"POST", "/api/v1/organisations"},
			// Authentication comes before routing, so even routes being
			// added elsewhere (or mistyped) never answer a bad token.
			{"POST", broadcasts + "/" + b.ID + "/resend"}, {"GET", "/api/v1/providers"}, {"POST", "/api/v1/providers"},
			{"GET", broadcasts + "/" + b.ID + "/no-such-thing"},
		} {
			res := api.do(t, request{Method: route.method, Path: route.path, Auth: "Bearer " + expired, Body: "{}"})
			if res.Status != http.StatusUnauthorized {
				t.Errorf("%s %s with an expired token: %s", route.method, route.path, res)
				continue
			}
			checkErrorBody(t, res, tocsin.CodeUnauthorized)
		}
		// Nothing changed.
		wantBroadcast(t, api.get(t, "gd-met", broadcasts+"/"+b.ID), http.StatusOK, tocsin.StatusPendingReview)
	})
}

func TestIdempotencyKey(t *testing.T) {
	api := newTestAPI(t)
	withKey := func(org, key string, body any) response {
		return api.do(t, request{Method: http.MethodPost, Path: broadcasts, Org: org, Body: body,
			Header: map[string]string{"Idempotency-Key": key}})
	}

	first := withKey("gd-met", "retry-1", ordinary(onTime, "440100"))
	b1 := wantBroadcast(t, first, http.StatusCreated, tocsin.StatusPendingReview)
	second := withKey("gd-met", "retry-1", ordinary(onTime, "440100"))
	b2 := wantBroadcast(t, second, http.StatusCreated, tocsin.StatusPendingReview)
	if b1.ID != b2.ID {
		t.Fatalf("retry created %s, want the first result %s", b2.ID, b1.ID)
	}
	if first.Header.Get("Idempotent-Replayed") != "" || second.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed = %q then %q, want absent then true",
			first.Header.Get("Idempotent-Replayed"), second.Header.Get("Idempotent-Replayed"))
	}
	if first.Header.Get("Location") != second.Header.Get("Location") {
		t.Errorf("Location %q then %q", first.Header.Get("Location"), second.Header.Get("Location"))
	}
	list := decode[listPage](t, api.get(t, "gd-met", broadcasts))
	if len(list.Broadcasts) != 1 {
		t.Fatalf("after a retried filing the department has %d broadcasts, want 1", len(list.Broadcasts))
	}

	e := wantError(t, withKey("gd-met", "retry-1", ordinary(longAfter, "440100")),
		http.StatusUnprocessableEntity, tocsin.CodeIdempotencyReuse)
	if e.Details["broadcast_id"] != b1.ID {
		t.Errorf("reuse error names %v, want %s", e.Details["broadcast_id"], b1.ID)
	}

	// Keys belong to one organisation: another department's same key is
	// its own filing.
	b3 := wantBroadcast(t, withKey("gx-health", "retry-1", ordinary(onTime, "450100")), http.StatusCreated, tocsin.StatusPendingReview)
	if b3.ID == b1.ID {
		t.Errorf("another department's filing with the same key replayed %s", b1.ID)
	}

	// A refused filing stores nothing under its key: the corrected retry
	// goes through.
	wantError(t, withKey("gd-met", "retry-2", ordinary(tooEarly, "440100")), http.StatusUnprocessableEntity, tocsin.CodeTooLate)
	wantBroadcast(t, withKey("gd-met", "retry-2", ordinary(onTime, "440100")), http.StatusCreated, tocsin.StatusPendingReview)

	// An emergency replay does not dispatch twice.
	before := api.outboxBacklog(t)
	e1 := wantBroadcast(t, withKey("gd-met", "storm", emergency("440100")), http.StatusCreated, tocsin.StatusDispatching)
	e2 := wantBroadcast(t, withKey("gd-met", "storm", emergency("440100")), http.StatusCreated, tocsin.StatusDispatching)
	if e1.ID != e2.ID {
		t.Errorf("emergency retry created %s, want %s", e2.ID, e1.ID)
	}
	if got := api.outboxBacklog(t) - before; got != 2 {
		t.Errorf("emergency filed twice with one key queued %d dispatches, want 2 (cmcc, cucc)", got)
	}

	wantError(t, withKey("gd-met", strings.Repeat("k", 256), ordinary(onTime, "440100")), http.StatusBadRequest, tocsin.CodeInvalid)
}

// TestConcurrentRetries sends one filing many times at once under one
// Idempotency-Key, as a client retrying on timeouts might: every answer is
// the same broadcast, and only one exists.
func TestConcurrentRetries(t *testing.T) {
	api := newTestAPI(t)
	const n = 16
	bearer := "Bearer " + api.token(t, "gx-health")
	type result struct {
		res response
		err error
	}
	results := make(chan result, 2*n)
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Go(func() {
			req := request{Method: http.MethodPost, Path: broadcasts, Auth: bearer, Body: emergency("450100")}
			if i%2 == 0 { // half retry one filing, half file their own
				req.Header = map[string]string{"Idempotency-Key": "burst"}
			}
			res, err := api.send(req)
			results <- result{res, err}
		})
	}
	wg.Wait()
	close(results)
	seen := map[string]int{}
	for r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		b := wantBroadcast(t, r.res, http.StatusCreated, tocsin.StatusDispatching)
		seen[b.ID]++
	}
	// n filings without a key, and one with it answered n times.
	if len(seen) != n+1 {
		t.Errorf("%d distinct broadcasts, want %d: %v", len(seen), n+1, seen)
	}
	list := decode[listPage](t, api.get(t, "gx-health", broadcasts+"?limit=200"))
	if len(list.Broadcasts) != n+1 {
		t.Errorf("listing has %d broadcasts, want %d", len(list.Broadcasts), n+1)
	}
	if got := api.outboxBacklog(t); got != 2*(n+1) {
		t.Errorf("outbox holds %d dispatches, want %d (cmcc and ctcc for each broadcast)", got, 2*(n+1))
	}
}

// chunked hides a reader's length so the request is sent chunked, without
// a Content-Length the server could check up front.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestRequestBodies(t *testing.T) {
	api := newTestAPI(t)
	huge := `{"title":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `","content":"c","scope":["440100"],"send_at":"` + onTime + `"}`
	tests := []struct {
		name   string
		path   string
		body   any
		header map[string]string
		status int
		code   tocsin.Code
		in     string // the message mentions this
	}{
		{"over 1 MiB with Content-Length", broadcasts, huge, nil, http.StatusRequestEntityTooLarge, tocsin.CodeTooLarge, ""},
		{"over 1 MiB chunked", broadcasts, chunked{strings.NewReader(huge)}, nil, http.StatusRequestEntityTooLarge, tocsin.CodeTooLarge, ""},
		{"over 1 MiB on approve", broadcasts + "/BC000001/approve", chunked{strings.NewReader(huge)}, nil, http.StatusRequestEntityTooLarge, tocsin.CodeTooLarge, ""},
		{"malformed JSON", broadcasts, `{"title": "t",`, nil, http.StatusBadRequest, tocsin.CodeInvalid, ""},
		{"not JSON", broadcasts, `title=t&content=c`, nil, http.StatusBadRequest, tocsin.CodeInvalid, ""},
		{"unknown field", broadcasts, `{"title":"t","content":"c","scope":["440100"],"send_at":"` + onTime + `","priority":"high"}`, nil, http.StatusBadRequest, tocsin.CodeInvalid, "priority"},
		{"misspelt field", broadcasts, `{"title":"t","content":"c","scopes":["440100"],"send_at":"` + onTime + `"}`, nil, http.StatusBadRequest, tocsin.CodeInvalid, "scopes"},
		{"trailing data", broadcasts, `{"title":"t"} {"title":"u"}`, nil, http.StatusBadRequest, tocsin.CodeInvalid, ""},
		{"empty body", broadcasts, ``, nil, http.StatusBadRequest, tocsin.CodeInvalid, ""},
		{"array body", broadcasts, `[]`, nil, http.StatusUnprocessableEntity, tocsin.CodeValidation, ""},
		{"wrong type", broadcasts, `{"title":"t","content":"c","scope":"440100","send_at":"` + onTime + `"}`, nil, http.StatusUnprocessableEntity, tocsin.CodeValidation, "scope"},
		{"bad time", broadcasts, `{"title":"t","content":"c","scope":["440100"],"send_at":"next tuesday"}`, nil, http.StatusBadRequest, tocsin.CodeInvalid, ""},
		{"XML", broadcasts, `<filing/>`, map[string]string{"Content-Type": "application/xml"}, http.StatusUnsupportedMediaType, tocsin.CodeUnsupportedMedia, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := api.do(t, request{Method: http.MethodPost, Path: tt.path, Org: "gd-met", Body: tt.body, Header: tt.header})
			e := wantError(t, res, tt.status, tt.code)
			if tt.in != "" && !strings.Contains(e.Message, tt.in) {
				t.Errorf("message %q does not mention %q", e.Message, tt.in)
			}
		})
	}
	if n := len(decode[listPage](t, api.get(t, "gd-met", broadcasts)).Broadcasts); n != 0 {
		t.Errorf("refused bodies filed %d broadcasts", n)
	}
	// Just under the limit is read (and then refused on its merits).
	under := `{"title":"t","content":"` + strings.Repeat("a", 2000) + `","scope":["440100"],"send_at":"` + onTime + `"}`
	wantError(t, api.post(t, "gd-met", broadcasts, under), http.StatusUnprocessableEntity, tocsin.CodeValidation)
}

func TestCalendarEarliest(t *testing.T) {
	api := newTestAPI(t)
	tests := []struct {
		name   string
		query  string
		want   map[string]any // for 200
		status int
		code   tocsin.Code
		in     string
	}{
		{"the contract's example", "?filed=2026-09-18", map[string]any{"filed": "2026-09-18", "earliest_send_date": earliest, "working_days": 10.0}, http.StatusOK, "", ""},
		{"today by the server clock", "", map[string]any{"filed": "2026-09-18", "earliest_send_date": earliest, "working_days": 10.0}, http.StatusOK, "", ""},
		// 10-08, 10-09, 10-10 (a Saturday worked for National Day), 10-12 ... 10-20.
		{"filed on a holiday", "?filed=2026-10-01", map[string]any{"filed": "2026-10-01", "earliest_send_date": "2026-10-20", "working_days": 10.0}, http.StatusOK, "", ""},
		{"missing year", "?filed=2027-03-01", nil, http.StatusUnprocessableEntity, tocsin.CodeCalendarMissing, "2027"},
		{"walks into a missing year", "?filed=2026-12-28", nil, http.StatusUnprocessableEntity, tocsin.CodeCalendarMissing, "2027"},
		{"bad date", "?filed=26-1-1", nil, http.StatusUnprocessableEntity, tocsin.CodeValidation, "YYYY-MM-DD"},
		{"impossible date", "?filed=2026-02-30", nil, http.StatusUnprocessableEntity, tocsin.CodeValidation, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := api.get(t, "", "/api/v1/calendar/earliest"+tt.query)
			if tt.code != "" {
				e := wantError(t, res, tt.status, tt.code)
				if !strings.Contains(e.Message, tt.in) {
					t.Errorf("message %q does not mention %q", e.Message, tt.in)
				}
				return
			}
			if res.Status != tt.status {
				t.Fatalf("%s", res)
			}
			got := decode[map[string]any](t, res)
			if len(got) != len(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}

	t.Run("the same date a filing is refused with", func(t *testing.T) {
		got := decode[map[string]any](t, api.get(t, "", "/api/v1/calendar/earliest"))
		e := wantError(t, api.post(t, "gd-met", broadcasts, ordinary(tooEarly, "440100")), http.StatusUnprocessableEntity, tocsin.CodeTooLate)
		if got["earliest_send_date"] != e.Details["earliest_send_date"] {
			t.Errorf("calendar says %v, filing refused naming %v", got["earliest_send_date"], e.Details["earliest_send_date"])
		}
	})

	t.Run("days", func(t *testing.T) {
		res := api.get(t, "", "/api/v1/calendar/days?from=2026-09-18&to=2026-09-20")
		if res.Status != http.StatusOK {
			t.Fatal(res)
		}
		got := decode[struct{ Days []tocsin.CalendarDay }](t, res)
		if len(got.Days) != 3 || !got.Days[0].Working || got.Days[1].Working || !got.Days[2].Working {
			t.Errorf("days = %+v, want Friday working, Saturday not, Sunday a make-up working day", got.Days)
		}
		wantError(t, api.get(t, "", "/api/v1/calendar/days?from=2026-09-20&to=2026-09-18"), http.StatusUnprocessableEntity, tocsin.CodeValidation)
		wantError(t, api.get(t, "", "/api/v1/calendar/days?from=2026-12-30&to=2027-01-02"), http.StatusUnprocessableEntity, tocsin.CodeCalendarMissing)
	})
}

type listPage struct {
	Broadcasts []broadcast `json:"broadcasts"`
	NextCursor string      `json:"next_cursor"`
}

func ids(p listPage) []string {
	out := make([]string, len(p.Broadcasts))
	for i, b := range p.Broadcasts {
		out[i] = b.ID
	}
	return out
}

func TestListBroadcasts(t *testing.T) {
	api := newTestAPI(t)
	var gd, gx []string
	for range 3 {
		gd = append(gd, api.file(t, "gd-met", ordinary(longAfter, "440100")).ID)
	}
	for range 2 {
		gx = append(gx, api.file(t, "gx-health", ordinary(longAfter, "450100")).ID)
	}
	both := api.file(t, "mem", ordinary(longAfter, "440000", "450000")).ID
	storm := api.file(t, "gd-met", emergency("440100")).ID
	gd = append(gd, storm)
	wantBroadcast(t, api.post(t, "gd-cab", broadcasts+"/"+gd[0]+"/approve", nil), http.StatusOK, tocsin.StatusApproved)

	newestFirst := func(xs ...[]string) []string {
		var out []string
		for _, x := range xs {
			out = append(out, x...)
		}
		slices.Sort(out)
		slices.Reverse(out)
		return out
	}
	all := newestFirst(gd, gx, []string{both})

	tests := []struct {
		name  string
		org   string
		query string
		want  []string
	}{
		{"department sees its own", "gd-met", "", newestFirst(gd)},
		{"department cannot ask for another's", "gd-met", "?department=gx-health", newestFirst(gd)},
		{"other department", "gx-health", "", newestFirst(gx)},
		{"national department", "mem", "", []string{both}},
		{"prefecture department sees nothing", "gz-em", "", nil},
		{"Guangdong regulator sees Guangdong", "gd-cab", "", newestFirst(gd, []string{both})},
		{"Guangxi regulator sees Guangxi", "gx-cab", "", newestFirst(gx, []string{both})},
		{"MIIT sees all", "miit", "", all},
		{"admin sees all", "admin", "", all},
		{"status filter", "miit", "?status=approved", []string{gd[0]}},
		{"status filter for a province", "gx-cab", "?status=approved", nil},
		{"several statuses", "gd-cab", "?status=approved,dispatching", newestFirst([]string{gd[0], storm})},
		{"pending", "gd-cab", "?status=pending_review", newestFirst(gd[1:3], []string{both})},
		{"emergencies", "miit", "?emergency=true", []string{storm}},
		{"regulator by department", "miit", "?department=gx-health", newestFirst(gx)},
		{"Guangdong regulator asking for Guangxi's department", "gd-cab", "?department=gx-health", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := api.get(t, tt.org, broadcasts+tt.query)
			if res.Status != http.StatusOK {
				t.Fatal(res)
			}
			page := decode[listPage](t, res)
			if page.Broadcasts == nil {
				t.Errorf("broadcasts is null, want [] or a list: %s", res.Body)
			}
			if got := ids(page); !slices.Equal(got, tt.want) && (len(got) != 0 || len(tt.want) != 0) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
			if page.NextCursor != "" {
				t.Errorf("next_cursor = %q on the only page", page.NextCursor)
			}
		})
	}

	t.Run("pagination", func(t *testing.T) {
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > len(all) {
				t.Fatalf("pagination does not end: %v", got)
			}
			q := "?limit=2"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			page := decode[listPage](t, api.get(t, "miit", broadcasts+q))
			if len(page.Broadcasts) > 2 {
				t.Fatalf("page of %d with limit=2", len(page.Broadcasts))
			}
			got = append(got, ids(page)...)
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if !slices.Equal(got, all) {
			t.Errorf("paged ids = %v, want %v", got, all)
		}
		// An exact multiple of the limit ends without an empty page.
		page := decode[listPage](t, api.get(t, "gx-health", broadcasts+"?limit=2"))
		if len(page.Broadcasts) != 2 || page.NextCursor != "" {
			t.Errorf("gx-health limit=2: %d broadcasts, next_cursor %q; want 2 and none", len(page.Broadcasts), page.NextCursor)
		}
		// Pagination keeps the filter.
		first := decode[listPage](t, api.get(t, "gd-cab", broadcasts+"?limit=1&status=pending_review"))
		second := decode[listPage](t, api.get(t, "gd-cab", broadcasts+"?limit=5&status=pending_review&cursor="+first.NextCursor))
		if got := append(ids(first), ids(second)...); !slices.Equal(got, newestFirst(gd[1:3], []string{both})) {
			t.Errorf("paged pending for gd-cab = %v", got)
		}
	})

	for _, tt := range []struct {
		name, query string
		status      int
		code        tocsin.Code
	}{
		{"unknown status", "?status=bogus", http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"zero limit", "?limit=0", http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"word limit", "?limit=many", http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"bad emergency", "?emergency=maybe", http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"bad cursor", "?cursor=zzz", http.StatusBadRequest, tocsin.CodeInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, api.get(t, "miit", broadcasts+tt.query), tt.status, tt.code)
		})
	}

	t.Run("reading one", func(t *testing.T) {
		for _, tt := range []struct {
			org, id string
			status  int
		}{
			{"gd-met", gd[1], http.StatusOK},
			{"gx-health", gd[1], http.StatusForbidden},
			{"gz-em", gd[1], http.StatusForbidden},
			{"gd-cab", gd[1], http.StatusOK},
			{"gx-cab", gd[1], http.StatusForbidden},
			{"gx-cab", both, http.StatusOK},
			{"miit", gx[0], http.StatusOK},
			{"admin", gx[0], http.StatusOK},
			{"miit", "BC999999", http.StatusNotFound},
			{"miit", "nonsense", http.StatusNotFound},
		} {
			res := api.get(t, tt.org, broadcasts+"/"+tt.id)
			if res.Status != tt.status {
				t.Errorf("%s GET %s: %s, want %d", tt.org, tt.id, res, tt.status)
			} else if tt.status != http.StatusOK {
				checkErrorBody(t, res, map[int]tocsin.Code{403: tocsin.CodeForbidden, 404: tocsin.CodeNotFound}[tt.status])
			}
		}
	})
}

func TestWithdrawAndCancel(t *testing.T) {
	api := newTestAPI(t)
	pending := func(t *testing.T) string { return api.file(t, "gd-met", ordinary(longAfter, "440100")).ID }
	approved := func(t *testing.T) string {
		id := pending(t)
		wantBroadcast(t, api.post(t, "gd-cab", broadcasts+"/"+id+"/approve", nil), http.StatusOK, tocsin.StatusApproved)
		return id
	}
	rejected := func(t *testing.T) string {
		id := pending(t)
		wantBroadcast(t, api.post(t, "gd-cab", broadcasts+"/"+id+"/reject",
			map[string]any{"reason_code": "content", "reason": "x"}), http.StatusOK, tocsin.StatusRejected)
		return id
	}
	dispatching := func(t *testing.T) string { return api.file(t, "gd-met", emergency("440100")).ID }

	tests := []struct {
		name   string
		setup  func(t *testing.T) string
		by     string
		action string
		status int
		want   tocsin.Status // on success
		code   tocsin.Code   // on failure
	}{
		{"withdraw pending", pending, "gd-met", "withdraw", http.StatusOK, tocsin.StatusWithdrawn, ""},
		{"withdraw approved", approved, "gd-met", "withdraw", http.StatusOK, tocsin.StatusWithdrawn, ""},
		{"withdraw by another department", pending, "gx-health", "withdraw", http.StatusForbidden, "", tocsin.CodeForbidden},
		{"withdraw by the regulator", pending, "gd-cab", "withdraw", http.StatusForbidden, "", tocsin.CodeForbidden},
		{"withdraw dispatching", dispatching, "gd-met", "withdraw", http.StatusConflict, "", tocsin.CodeConflict},
		{"withdraw rejected", rejected, "gd-met", "withdraw", http.StatusConflict, "", tocsin.CodeConflict},
		{"cancel pending", pending, "gd-cab", "cancel", http.StatusOK, tocsin.StatusCancelled, ""},
		{"cancel approved by MIIT", approved, "miit", "cancel", http.StatusOK, tocsin.StatusCancelled, ""},
		{"cancel dispatching", dispatching, "gd-cab", "cancel", http.StatusOK, tocsin.StatusCancelled, ""},
		{"cancel by the department", pending, "gd-met", "cancel", http.StatusForbidden, "", tocsin.CodeForbidden},
		{"cancel by another province", dispatching, "gx-cab", "cancel", http.StatusForbidden, "", tocsin.CodeForbidden},
		{"cancel rejected", rejected, "gd-cab", "cancel", http.StatusConflict, "", tocsin.CodeConflict},
		{"cancel unknown", func(*testing.T) string { return "BC999999" }, "gd-cab", "cancel", http.StatusNotFound, "", tocsin.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.setup(t)
			path := broadcasts + "/" + id + "/" + tt.action
			before := api.outboxBacklog(t)
			res := api.post(t, tt.by, path, map[string]any{"reason": "  duplicate of another filing "})
			if tt.code != "" {
				wantError(t, res, tt.status, tt.code)
				if got := api.outboxBacklog(t); got != before {
					t.Errorf("a refused %s queued %d dispatches", tt.action, got-before)
				}
				return
			}
			b := wantBroadcast(t, res, tt.status, tt.want)
			if b.Closure == nil || b.Closure.Action != tt.want || b.Closure.Org != tt.by || b.Closure.Reason != "duplicate of another filing" {
				t.Errorf("closure = %+v, want %s by %s with the trimmed reason", b.Closure, tt.want, tt.by)
			}
			stops := 0
			for _, p := range b.Providers {
				if p.Status != tocsin.DeliveryStopped {
					t.Errorf("provider %s is %s after %s, want stopped", p.Provider, p.Status, tt.action)
				}
				stops++
			}
			// A stop goes to every provider of a dispatching broadcast
			// (Article 28); nothing goes out for one not yet released.
			if got := api.outboxBacklog(t) - before; got != stops {
				t.Errorf("%s queued %d messages, want %d stops", tt.action, got, stops)
			}
			// Closed is final.
			wantError(t, api.post(t, tt.by, path, nil), http.StatusConflict, tocsin.CodeConflict)
			wantError(t, api.post(t, "miit", broadcasts+"/"+id+"/approve", nil), http.StatusConflict, tocsin.CodeConflict)
		})
	}

	t.Run("cancel of a dispatching emergency stops both providers", func(t *testing.T) {
		id := dispatching(t)
		b := wantBroadcast(t, api.post(t, "gd-cab", broadcasts+"/"+id+"/cancel", map[string]any{"reason": "wrong district"}), http.StatusOK, tocsin.StatusCancelled)
		if got := providerIDs(b); !slices.Equal(got, []string{"cmcc", "cucc"}) {
			t.Errorf("providers = %v, want cmcc and cucc", got)
		}
	})
	// Withdraw and cancel say why (DESIGN, Reasons): without a body, or
	// with a blank reason, they are 422 reason_required and change nothing.
	t.Run("withdraw or cancel without a reason", func(t *testing.T) {
		for _, tt := range []struct {
			setup      func(t *testing.T) string
			by, action string
			body       any
		}{
			{pending, "gd-met", "withdraw", nil},
			{pending, "gd-met", "withdraw", map[string]any{"reason": "   "}},
			{approved, "gd-cab", "cancel", nil},
			{dispatching, "gd-cab", "cancel", map[string]any{}},
			{dispatching, "gd-cab", "cancel", map[string]any{"reason": ""}},
		} {
			id := tt.setup(t)
			before := api.outboxBacklog(t)
			res := api.do(t, request{Method: http.MethodPost, Path: broadcasts + "/" + id + "/" + tt.action, Org: tt.by, Body: tt.body})
			wantError(t, res, http.StatusUnprocessableEntity, tocsin.CodeReasonRequired)
			if got := api.outboxBacklog(t); got != before {
				t.Errorf("a refused %s queued %d messages", tt.action, got-before)
			}
			if b := api.getBroadcast(t, "gd-met", id); b.Status.Final() {
				t.Errorf("%s without a reason left it %s", tt.action, b.Status)
			}
		}
	})
}

func TestPostHoc(t *testing.T) {
	api := newTestAPI(t)
	storm := api.file(t, "gd-met", emergency("440100")).ID
	path := broadcasts + "/" + storm + "/post-hoc"

	wantError(t, api.post(t, "gd-met", path, map[string]any{"report": "  "}), http.StatusUnprocessableEntity, tocsin.CodeValidation)
	wantError(t, api.post(t, "gx-health", path, map[string]any{"report": "r"}), http.StatusForbidden, tocsin.CodeForbidden)
	wantError(t, api.post(t, "gd-cab", path, map[string]any{"report": "r"}), http.StatusForbidden, tocsin.CodeForbidden)
	wantError(t, api.post(t, "gd-cab", path+"/review", map[string]any{"verdict": "accepted"}), http.StatusConflict, tocsin.CodeConflict)

	b := wantBroadcast(t, api.post(t, "gd-met", path, map[string]any{"report": "台风“海燕”红色预警，依据……"}), http.StatusOK, tocsin.StatusDispatching)
	if b.PostHoc == nil || b.PostHoc.Status != tocsin.PostHocFiled || b.PostHoc.FiledBy != "gd-met" {
		t.Fatalf("post_hoc = %+v, want report_filed by gd-met", b.PostHoc)
	}

	wantError(t, api.post(t, "gx-cab", path+"/review", map[string]any{"verdict": "accepted"}), http.StatusForbidden, tocsin.CodeForbidden)
	wantError(t, api.post(t, "gd-cab", path+"/review", map[string]any{"verdict": "fine"}), http.StatusUnprocessableEntity, tocsin.CodeValidation)
	wantError(t, api.post(t, "gd-cab", path+"/review", map[string]any{"verdict": "not_emergency"}), http.StatusUnprocessableEntity, tocsin.CodeReasonRequired)
	b = wantBroadcast(t, api.post(t, "gd-cab", path+"/review", map[string]any{"verdict": "not_emergency", "note": "a forecast, not a warning"}),
		http.StatusOK, tocsin.StatusDispatching)
	if b.PostHoc.Status != tocsin.PostHocReviewed || b.PostHoc.Verdict != tocsin.PostHocNotEmergency || b.PostHoc.ReviewedBy != "gd-cab" {
		t.Errorf("post_hoc = %+v, want reviewed not_emergency by gd-cab", b.PostHoc)
	}
	// The flag stays on the department's record.
	got := wantBroadcast(t, api.get(t, "gd-met", broadcasts+"/"+storm), http.StatusOK, tocsin.StatusDispatching)
	if got.PostHoc.Verdict != tocsin.PostHocNotEmergency || got.PostHoc.Note != "a forecast, not a warning" {
		t.Errorf("department reads post_hoc %+v", got.PostHoc)
	}
	wantError(t, api.post(t, "gd-met", path, map[string]any{"report": "again"}), http.StatusConflict, tocsin.CodeConflict)

	ordinaryID := api.file(t, "gd-met", ordinary(longAfter, "440100")).ID
	wantError(t, api.post(t, "gd-met", broadcasts+"/"+ordinaryID+"/post-hoc", map[string]any{"report": "r"}), http.StatusConflict, tocsin.CodeConflict)
}

func TestOrganisations(t *testing.T) {
	api := newTestAPI(t)
	scMet := map[string]any{
		"id": "sc-met", "name": "Sichuan Meteorological Service", "name_zh": "四川省气象局",
		"role": "department", "level": "provincial", "jurisdiction": "510000", "sender_code": "12379510",
		"password": "correct horse battery",
	}
	tests := []struct {
		name   string
		by     string
		body   map[string]any
		status int
		code   tocsin.Code
	}{
		{"department may not", "gd-met", scMet, http.StatusForbidden, tocsin.CodeForbidden},
		{"regulator may not", "miit", scMet, http.StatusForbidden, tocsin.CodeForbidden},
		{"admin", "admin", scMet, http.StatusCreated, ""},
		{"short password", "admin", with(scMet, "password", "short"), http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"bad id", "admin", with(scMet, "id", "Sichuan Met"), http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"unknown jurisdiction", "admin", with(scMet, "jurisdiction", "999999"), http.StatusUnprocessableEntity, tocsin.CodeUnknownRegion},
		{"provincial level with a city", "admin", with(scMet, "jurisdiction", "510100"), http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"department without sender code", "admin", with(scMet, "sender_code", ""), http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"unknown role", "admin", with(scMet, "role", "king"), http.StatusUnprocessableEntity, tocsin.CodeValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := api.post(t, tt.by, "/api/v1/organisations", tt.body)
			if tt.code != "" {
				wantError(t, res, tt.status, tt.code)
				return
			}
			if res.Status != tt.status {
				t.Fatal(res)
			}
			o := decode[map[string]any](t, res)
			if o["id"] != "sc-met" || o["password"] != nil || o["password_hash"] != nil {
				t.Errorf("created %s", res.Body)
			}
		})
	}

	t.Run("listing", func(t *testing.T) {
		wantError(t, api.get(t, "gd-met", "/api/v1/organisations"), http.StatusForbidden, tocsin.CodeForbidden)
		res := api.get(t, "admin", "/api/v1/organisations")
		if res.Status != http.StatusOK {
			t.Fatal(res)
		}
		var got []string
		for _, o := range decode[struct{ Organisations []tocsin.Organisation }](t, res).Organisations {
			got = append(got, o.ID)
		}
		if !slices.Contains(got, "sc-met") || !slices.Contains(got, "miit") || len(got) < len(demo.Organisations())+1 {
			t.Errorf("organisations = %v", got)
		}
	})

	t.Run("a padded id names one organisation and its login", func(t *testing.T) {
		res := api.post(t, "admin", "/api/v1/organisations", with(with(scMet, "id", "  gz-met "), "jurisdiction", "440000"))
		if res.Status != http.StatusCreated {
			t.Fatal(res)
		}
		if o := decode[tocsin.Organisation](t, res); o.ID != "gz-met" {
			t.Errorf("response id = %q, want the stored gz-met", o.ID)
		}
		err := api.Store.View(context.Background(), func(tx tocsin.ReadTx) error {
			if _, err := tx.Organisation("gz-met"); err != nil {
				return err
			}
			a, err := tx.Account("gz-met")
			if err != nil {
				return err
			}
			if a.Org != "gz-met" {
				return fmt.Errorf("account gz-met acts for %q", a.Org)
			}
			return nil
		})
		if err != nil {
			t.Errorf("after creating \"  gz-met \": %v", err)
		}
	})

	t.Run("the new department files", func(t *testing.T) {
		res := api.do(t, request{Method: http.MethodPost, Path: broadcasts, Org: "sc-met", Body: ordinary(onTime, "510100")})
		b := wantBroadcast(t, res, http.StatusCreated, tocsin.StatusPendingReview)
		if b.SenderCode != "12379510" || b.Agency != "四川省气象局" {
			t.Errorf("sender code %q, agency %q", b.SenderCode, b.Agency)
		}
	})

	t.Run("a token for an unregistered organisation cannot file", func(t *testing.T) {
		tok, err := api.Keys.Issue(tocsin.Actor{Role: tocsin.RoleDepartment, Org: "ghost",
			Level: tocsin.LevelNational, Jurisdiction: tocsin.National}, time.Now(), tokenTTL)
		if err != nil {
			t.Fatal(err)
		}
		res := api.do(t, request{Method: http.MethodPost, Path: broadcasts, Auth: "Bearer " + tok, Body: ordinary(onTime, "510100")})
		wantError(t, res, http.StatusUnauthorized, tocsin.CodeUnauthorized)
	})
}

func with(m map[string]any, k string, v any) map[string]any {
	c := make(map[string]any, len(m))
	for key, val := range m {
		c[key] = val
	}
	c[k] = v
	return c
}

func TestProbesAndDocs(t *testing.T) {
	api := newTestAPI(t)
	api.file(t, "gd-met", emergency("440100")) // two dispatches waiting

	t.Run("healthz", func(t *testing.T) {
		res := api.get(t, "", "/healthz")
		if res.Status != http.StatusOK || decode[map[string]any](t, res)["status"] != "ok" {
			t.Errorf("healthz: %s", res)
		}
	})
	t.Run("readyz", func(t *testing.T) {
		res := api.get(t, "", "/readyz")
		if res.Status != http.StatusOK {
			t.Fatal(res)
		}
		v := decode[map[string]any](t, res)
		if v["status"] != "ready" || v["outbox_backlog"] != 2.0 {
			t.Errorf("readyz = %v, want ready with outbox_backlog 2", v)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		api.get(t, "", "/healthz")
		api.post(t, "gd-met", broadcasts, ordinary(tooEarly, "440100"))
		res := api.get(t, "", "/metrics")
		if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("metrics: %d %s", res.Status, res.Header.Get("Content-Type"))
		}
		for _, want := range []string{
			"# TYPE tocsin_http_requests_total counter",
			`tocsin_http_requests_total{code="200",method="GET"}`,
			`tocsin_http_requests_total{code="201",method="POST"} 1`,
			`tocsin_filing_durable_seconds_count{kind="emergency"} 1`,
			`tocsin_filings_total{kind="emergency"} 1`,
			`tocsin_filings_refused_total{code="too_late"} 1`,
		} {
			if !strings.Contains(string(res.Body), want) {
				t.Errorf("metrics lack %q:\n%s", want, res.Body)
			}
		}
	})
	t.Run("openapi", func(t *testing.T) {
		res := api.get(t, "", "/api/v1/openapi.json")
		if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), jsonCT) {
			t.Fatalf("openapi: %d %s", res.Status, res.Header.Get("Content-Type"))
		}
		doc := decode[map[string]any](t, res)
		if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1") {
			t.Errorf("openapi = %v, want 3.1.x", doc["openapi"])
		}
		if _, ok := doc["paths"].(map[string]any); !ok {
			t.Errorf("openapi document has no paths object")
		}
	})
	t.Run("request id", func(t *testing.T) {
		res := api.do(t, request{Path: broadcasts, Header: map[string]string{"X-Request-Id": "trace-42"}})
		e := wantError(t, res, http.StatusUnauthorized, tocsin.CodeUnauthorized)
		if res.Header.Get("X-Request-Id") != "trace-42" || e.Details["request_id"] != "trace-42" {
			t.Errorf("request id: header %q, body %v", res.Header.Get("X-Request-Id"), e.Details["request_id"])
		}
	})
	t.Run("unknown API route", func(t *testing.T) {
		wantError(t, api.get(t, "miit", "/api/v1/nothing"), http.StatusNotFound, tocsin.CodeNotFound)
		wantError(t, api.get(t, "", "/api/v1/nothing"), http.StatusNotFound, tocsin.CodeNotFound)
		wantError(t, api.get(t, "miit", broadcasts+"/BC000001/nothing"), http.StatusNotFound, tocsin.CodeNotFound)
	})
	t.Run("wrong method", func(t *testing.T) {
		res := api.do(t, request{Method: http.MethodDelete, Path: "/api/v1/calendar/earliest"})
		if res.Status < 400 || res.Status >= 500 {
			t.Fatalf("DELETE calendar: %s", res)
		}
		checkErrorBody(t, res, tocsin.CodeInvalid)
	})
}
