package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func TestEachVerifierTakesOnlyItsKinds(t *testing.T) {
	keys, err := auth.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	a := tocsin.Actor{Role: tocsin.RoleDepartment, Org: "gd-met", Level: tocsin.LevelProvincial, Jurisdiction: "440000"}
	now := time.Now()
	api, web := keys.Verifier(nil), keys.WebVerifier(nil)
	tests := []struct {
		kind     tocsin.CredentialKind
		api, web bool
		wantID   string
	}{
		{tocsin.CredentialService, true, false, "svc-1"},
		{tocsin.CredentialCLI, true, false, "cli-1"},
		{tocsin.CredentialSession, false, true, "sess-1"},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			tok, err := keys.IssueKind(tt.kind, tt.wantID, a, now, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []struct {
				name string
				v    *auth.Verifier
				ok   bool
			}{{"API", api, tt.api}, {"web", web, tt.web}} {
				c, err := v.v.VerifyToken(tok)
				if !v.ok {
					if !errors.Is(err, auth.ErrInvalidToken) {
						t.Errorf("%s verifier took a %s token: %+v, %v", v.name, tt.kind, c, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s verifier: %v", v.name, err)
				}
				if c.Kind != tt.kind || c.ID != tt.wantID || c.Org != "gd-met" || c.ExpiresAt.Sub(c.IssuedAt) != time.Hour {
					t.Errorf("%s verifier presented %+v", v.name, c)
				}
			}
		})
	}
	if _, err := keys.IssueKind(tocsin.CredentialService, "", a, now, time.Hour); err == nil {
		t.Error("a token without a credential id was issued")
	}
}
