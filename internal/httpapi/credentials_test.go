package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/demo"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// forged signs a token for a stored credential of org whose role, level
// and jurisdiction claims say claimed instead: the claims a holder of a
// real token might wish for (or a leaked signing key might write).
func (api *testAPI) forged(t *testing.T, org string, claimed tocsin.Actor) string {
	t.Helper()
	_, id := testkit.MustTokenID(t, api.Service, api.Keys, org, tokenTTL)
	claimed.Org = org
	tok, err := api.Keys.IssueKind(tocsin.CredentialService, id, claimed, time.Now(), tokenTTL)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

var regulatorClaims = tocsin.Actor{Role: tocsin.RoleRegulator, Level: tocsin.LevelNational, Jurisdiction: tocsin.National}

func TestForgedClaimsAreIgnored(t *testing.T) {
	api := newTestAPI(t)
	pending := api.file(t, "gd-met", ordinary(onTime, "440100"))
	tests := []struct {
		name   string
		auth   string
		method string
		path   string
		body   any
		status int
		code   tocsin.Code
	}{
		{"a department claiming to be MIIT approves", api.forged(t, "gd-met", regulatorClaims),
			http.MethodPost, broadcasts + "/" + pending.ID + "/approve", nil, http.StatusForbidden, tocsin.CodeForbidden},
		{"a prefecture bureau claiming provincial files", api.forged(t, "gz-em",
			tocsin.Actor{Role: tocsin.RoleDepartment, Level: tocsin.LevelProvincial, Jurisdiction: "440000"}),
			http.MethodPost, broadcasts, ordinary(onTime, "440100"), http.StatusForbidden, tocsin.CodeForbidden},
		{"gd-met claiming Guangxi files there", api.forged(t, "gd-met",
			tocsin.Actor{Role: tocsin.RoleDepartment, Level: tocsin.LevelProvincial, Jurisdiction: "450000"}),
			http.MethodPost, broadcasts, ordinary(onTime, "450100"), http.StatusForbidden, tocsin.CodeForbidden},
		{"a regulator claiming admin manages organisations", api.forged(t, "gd-cab",
			tocsin.Actor{Role: tocsin.RoleAdmin, Level: tocsin.LevelNational, Jurisdiction: tocsin.National}),
			http.MethodGet, "/api/v1/organisations", nil, http.StatusForbidden, tocsin.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := api.do(t, request{Method: tt.method, Path: tt.path, Auth: tt.auth, Body: tt.body})
			wantError(t, res, tt.status, tt.code)
		})
	}
	if got := api.get(t, "miit", broadcasts+"/"+pending.ID); decode[broadcast](t, got).Status != tocsin.StatusPendingReview {
		t.Errorf("after the forgeries, %s is %s, want still pending review", pending.ID, decode[broadcast](t, got).Status)
	}
}

func TestStaleClaims(t *testing.T) {
	ctx := context.Background()
	org := func(id string) tocsin.Organisation {
		o, _ := demo.Organisation(id)
		return o
	}
	t.Run("the stored role applies to a token issued before the change", func(t *testing.T) {
		api := newTestAPI(t)
		pending := api.file(t, "gd-met", ordinary(onTime, "440100"))
		token := "Bearer " + api.token(t, "gd-cab")
		// Written to the store directly, as a restore or another process
		// might, so no revocation hides whether claims are read.
		demoted := org("gd-cab")
		demoted.Role, demoted.SenderCode = tocsin.RoleDepartment, "12300440"
		err := api.Store.Update(ctx, func(tx tocsin.Tx) error { return tx.PutOrganisation(&demoted) })
		if err != nil {
			t.Fatal(err)
		}
		res := api.do(t, request{Method: http.MethodPost, Path: broadcasts + "/" + pending.ID + "/approve", Auth: token})
		wantError(t, res, http.StatusForbidden, tocsin.CodeForbidden)
	})
	changes := []struct {
		name   string
		org    string
		change func(o *tocsin.Organisation)
	}{
		{"demoted", "gd-cab", func(o *tocsin.Organisation) { o.Role, o.SenderCode = tocsin.RoleDepartment, "12300440" }},
		{"moved", "gd-met", func(o *tocsin.Organisation) { o.Jurisdiction = "450000" }},
		{"lowered", "gd-met", func(o *tocsin.Organisation) { o.Level, o.Jurisdiction = tocsin.LevelPrefecture, "440100" }},
		{"disabled", "gd-met", func(o *tocsin.Organisation) { o.Disabled = true }},
	}
	for _, tt := range changes {
		t.Run("tokens end when the organisation is "+tt.name, func(t *testing.T) {
			api := newTestAPI(t)
			token := "Bearer " + api.token(t, tt.org)
			keep := "Bearer " + api.token(t, "miit")
			o := org(tt.org)
			tt.change(&o)
			if res := api.post(t, "admin", "/api/v1/organisations", o); res.Status != http.StatusCreated {
				t.Fatalf("change: %s", res)
			}
			res := api.do(t, request{Path: broadcasts, Auth: token})
			wantError(t, res, http.StatusUnauthorized, tocsin.CodeUnauthorized)
			if res := api.do(t, request{Path: broadcasts, Auth: keep}); res.Status != http.StatusOK {
				t.Errorf("another organisation's token = %s, want 200", res)
			}
			if tt.name == "disabled" {
				res := api.post(t, "admin", "/api/v1/tokens", map[string]any{"org": tt.org})
				wantError(t, res, http.StatusUnprocessableEntity, tocsin.CodeValidation)
			}
		})
	}
}

func TestServiceTokensAreIssuedListedAndRevoked(t *testing.T) {
	api := newTestAPI(t)
	res := api.post(t, "admin", "/api/v1/tokens", map[string]any{"org": "gd-met", "name": "alerting system", "ttl": "720h"})
	if res.Status != http.StatusCreated {
		t.Fatalf("issue: %s", res)
	}
	issued := decode[struct {
		ID, Token, Org, Jurisdiction string
		Role                         tocsin.Role
	}](t, res)
	if issued.ID == "" || issued.Token == "" || issued.Role != tocsin.RoleDepartment || issued.Jurisdiction != "440000" {
		t.Fatalf("issued %+v, want an id, a token and gd-met's stored role and jurisdiction", issued)
	}
	bearer := "Bearer " + issued.Token
	if res := api.do(t, request{Method: http.MethodPost, Path: broadcasts, Auth: bearer, Body: ordinary(onTime, "440100")}); res.Status != http.StatusCreated {
		t.Fatalf("filing with the issued token: %s", res)
	}
	listed := func() []string {
		res := api.get(t, "admin", "/api/v1/tokens?org=gd-met")
		var ids []string
		for _, c := range decode[struct{ Tokens []tocsin.Credential }](t, res).Tokens {
			ids = append(ids, c.ID)
		}
		return ids
	}
	if ids := listed(); len(ids) != 1 || ids[0] != issued.ID {
		t.Fatalf("gd-met's tokens = %v, want [%s]", ids, issued.ID)
	}

	refusals := []struct {
		name   string
		req    request
		status int
		code   tocsin.Code
	}{
		{"a department issues", request{Method: http.MethodPost, Path: "/api/v1/tokens", Org: "gd-met", Body: map[string]any{"org": "gd-met"}}, http.StatusForbidden, tocsin.CodeForbidden},
		{"a regulator lists", request{Path: "/api/v1/tokens", Org: "miit"}, http.StatusForbidden, tocsin.CodeForbidden},
		{"a department revokes", request{Method: http.MethodDelete, Path: "/api/v1/tokens/" + issued.ID, Org: "gd-met"}, http.StatusForbidden, tocsin.CodeForbidden},
		{"for an unregistered organisation", request{Method: http.MethodPost, Path: "/api/v1/tokens", Org: "admin", Body: map[string]any{"org": "ghost"}}, http.StatusNotFound, tocsin.CodeNotFound},
		{"for a provider", request{Method: http.MethodPost, Path: "/api/v1/tokens", Org: "admin", Body: map[string]any{"org": "cmcc"}}, http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"for too long", request{Method: http.MethodPost, Path: "/api/v1/tokens", Org: "admin", Body: map[string]any{"org": "gd-met", "ttl": "87840h"}}, http.StatusUnprocessableEntity, tocsin.CodeValidation},
		{"revoking an unknown id", request{Method: http.MethodDelete, Path: "/api/v1/tokens/nope", Org: "admin"}, http.StatusNotFound, tocsin.CodeNotFound},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) { wantError(t, api.do(t, tt.req), tt.status, tt.code) })
	}

	if res := api.do(t, request{Method: http.MethodDelete, Path: "/api/v1/tokens/" + issued.ID, Org: "admin"}); res.Status != http.StatusNoContent {
		t.Fatalf("revoke: %s", res)
	}
	wantError(t, api.do(t, request{Path: broadcasts, Auth: bearer}), http.StatusUnauthorized, tocsin.CodeUnauthorized)
	if ids := listed(); slices.Contains(ids, issued.ID) {
		t.Errorf("after revoking %s, gd-met's tokens = %v", issued.ID, ids)
	}
}

func TestOnlyAPITokensAreAPICredentials(t *testing.T) {
	api := newTestAPI(t)
	ctx := context.Background()
	now := time.Now()
	sign := func(kind tocsin.CredentialKind, id, org string, ttl time.Duration) string {
		t.Helper()
		o, ok := demo.Organisation(org)
		if !ok {
			o = tocsin.Organisation{ID: org, Role: tocsin.RoleAdmin, Level: tocsin.LevelNational, Jurisdiction: tocsin.National}
		}
		tok, err := api.Keys.IssueKind(kind, id, demo.Actor(o), now, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	// A web session, stored as a login stores it: its cookie's JWT.
	if err := api.Service.StartSession(ctx, tocsin.Credential{ID: "web-session", Org: "admin", Subject: "admin",
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"the session cookie as a bearer token", sign(tocsin.CredentialSession, "web-session", "admin", time.Hour), http.StatusUnauthorized},
		{"a CLI token for the operator", sign(tocsin.CredentialCLI, "cli-1", "admin", 2*time.Minute), http.StatusOK},
		{"a CLI token that lives too long", sign(tocsin.CredentialCLI, "cli-2", "admin", 10*time.Minute), http.StatusUnauthorized},
		{"a CLI token for a department", sign(tocsin.CredentialCLI, "cli-3", "gd-met", 2*time.Minute), http.StatusUnauthorized},
		{"a CLI token for an unregistered organisation", sign(tocsin.CredentialCLI, "cli-4", "root", 2*time.Minute), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := api.do(t, request{Path: "/api/v1/organisations", Auth: tt.auth})
			if tt.status == http.StatusOK {
				if res.Status != http.StatusOK {
					t.Fatalf("%s", res)
				}
				return
			}
			wantError(t, res, tt.status, tocsin.CodeUnauthorized)
		})
	}
}

// BenchmarkAuthenticate measures what reading the actor from the store
// costs each request: one bbolt read transaction for the credential and
// the organisation, both from the store's caches of decoded records after
// the first request (8.0 µs and 47 allocations each before them, 1.1 µs
// and 17 with them).
func BenchmarkAuthenticate(b *testing.B) {
	log := testkit.Logger(b)
	store := testkit.MustStore(b, log)
	svc := testkit.MustService(b, store, testkit.NewClock(testNow))
	testkit.MustSeed(b, svc, testkit.Organisations)
	c, _, err := svc.IssueToken(context.Background(), testkit.Operator, tocsin.TokenRequest{Org: "gd-met", TTL: time.Hour, Now: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Authenticate(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}
