package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

func mustKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func validActor() tocsin.Actor {
	return tocsin.Actor{
		Subject:      "ops-bot",
		Role:         tocsin.RoleDepartment,
		Org:          "gd-emergency",
		Level:        tocsin.LevelProvincial,
		Jurisdiction: "440000",
	}
}

// validClaims returns claims equivalent to what Issue produces for
// validActor at t0 with a one-hour ttl.
func validClaims() Claims {
	return Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   "ops-bot",
			Audience:  jwt.ClaimStrings{Audience},
			ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
			NotBefore: jwt.NewNumericDate(t0),
			IssuedAt:  jwt.NewNumericDate(t0),
			ID:        "test-jti",
		},
		Role:  "department",
		Org:   "gd-emergency",
		Level: "provincial",
		Jur:   "440000",
	}
}

func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64url(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	k := mustKeys(t)
	tests := []struct {
		name  string
		actor tocsin.Actor
		want  tocsin.Actor
	}{
		{"department", validActor(), validActor()},
		{
			"admin national, subject defaults to org",
			tocsin.Actor{Role: tocsin.RoleAdmin, Org: "admin", Level: tocsin.LevelNational, Jurisdiction: tocsin.National},
			tocsin.Actor{Subject: "admin", Role: tocsin.RoleAdmin, Org: "admin", Level: tocsin.LevelNational, Jurisdiction: tocsin.National},
		},
		{
			"regulator county",
			tocsin.Actor{Subject: "s", Role: tocsin.RoleRegulator, Org: "o", Level: tocsin.LevelCounty, Jurisdiction: "440106"},
			tocsin.Actor{Subject: "s", Role: tocsin.RoleRegulator, Org: "o", Level: tocsin.LevelCounty, Jurisdiction: "440106"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := k.Issue(tt.actor, t0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for _, at := range []time.Time{t0, t0.Add(59 * time.Minute), t0.Add(-29 * time.Second), t0.Add(time.Hour + 29*time.Second)} {
				got, err := k.Verifier(fixedNow(at)).Verify(tok)
				if err != nil {
					t.Fatalf("verify at %v: %v", at, err)
				}
				if got != tt.want {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestIssuedClaims(t *testing.T) {
	k := mustKeys(t)
	tok1, err := k.Issue(validActor(), t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := k.Issue(validActor(), t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(tok string) (map[string]any, map[string]any) {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("token has %d parts", len(parts))
		}
		var h, p map[string]any
		for i, dst := range []*map[string]any{&h, &p} {
			b, err := base64.RawURLEncoding.DecodeString(parts[i])
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, dst); err != nil {
				t.Fatal(err)
			}
		}
		return h, p
	}
	h, p := decode(tok1)
	_, p2 := decode(tok2)
	if h["alg"] != "EdDSA" {
		t.Errorf("alg = %v", h["alg"])
	}
	want := map[string]any{
		"iss": "tocsin", "aud": "tocsin", "sub": "ops-bot",
		"role": "department", "org": "gd-emergency", "level": "provincial", "jur": "440000",
		"iat": float64(t0.Unix()), "nbf": float64(t0.Unix()), "exp": float64(t0.Add(time.Hour).Unix()),
	}
	for key, v := range want {
		if p[key] != v {
			t.Errorf("claim %s = %#v, want %#v", key, p[key], v)
		}
	}
	if jti, _ := p["jti"].(string); jti == "" || jti == p2["jti"] {
		t.Errorf("jti %v / %v: want random, distinct", p["jti"], p2["jti"])
	}
}

func TestIssueRejects(t *testing.T) {
	k := mustKeys(t)
	mod := func(f func(*tocsin.Actor)) tocsin.Actor { a := validActor(); f(&a); return a }
	tests := []struct {
		name  string
		keys  *Keys
		actor tocsin.Actor
		ttl   time.Duration
	}{
		{"zero ttl", k, validActor(), 0},
		{"negative ttl", k, validActor(), -time.Second},
		{"provider role", k, mod(func(a *tocsin.Actor) { a.Role = tocsin.RoleProvider }), time.Hour},
		{"empty role", k, mod(func(a *tocsin.Actor) { a.Role = "" }), time.Hour},
		{"bad level", k, mod(func(a *tocsin.Actor) { a.Level = "city" }), time.Hour},
		{"empty org", k, mod(func(a *tocsin.Actor) { a.Org = "" }), time.Hour},
		{"empty jurisdiction", k, mod(func(a *tocsin.Actor) { a.Jurisdiction = "" }), time.Hour},
		{"5-digit jurisdiction", k, mod(func(a *tocsin.Actor) { a.Jurisdiction = "44000" }), time.Hour},
		{"7-digit jurisdiction", k, mod(func(a *tocsin.Actor) { a.Jurisdiction = "4400000" }), time.Hour},
		{"non-digit jurisdiction", k, mod(func(a *tocsin.Actor) { a.Jurisdiction = "44000x" }), time.Hour},
		{"National capitalised", k, mod(func(a *tocsin.Actor) { a.Jurisdiction = "National" }), time.Hour},
		{"no private key", &Keys{Public: k.Public}, validActor(), time.Hour},
		{"nil keys", nil, validActor(), time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := tt.keys.Issue(tt.actor, t0, tt.ttl); err == nil {
				t.Fatalf("Issue succeeded: %s", tok)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	k := mustKeys(t)
	other := mustKeys(t)
	pubPEM, err := encodePublic(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	good, err := k.Issue(validActor(), t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	edClaims := func(f func(*Claims)) string {
		c := validClaims()
		f(&c)
		return sign(t, jwt.SigningMethodEdDSA, k.Private, c)
	}
	mapClaims := func(f func(jwt.MapClaims)) string {
		c := jwt.MapClaims{
			"iss": Issuer, "aud": Audience, "sub": "ops-bot",
			"exp": t0.Add(time.Hour).Unix(), "iat": t0.Unix(), "nbf": t0.Unix(),
			"role": "department", "org": "gd-emergency", "level": "provincial", "jur": "440000",
		}
		f(c)
		return sign(t, jwt.SigningMethodEdDSA, k.Private, c)
	}
	payload := b64url(t, validClaims())
	header := b64url(t, map[string]string{"alg": "none", "typ": "JWT"})
	goodParts := strings.Split(good, ".")

	tests := []struct {
		name  string
		token string
		now   time.Time
		is    error // extra sentinel the error must wrap, besides ErrInvalidToken
	}{
		{"expired", good, t0.Add(time.Hour + 31*time.Second), jwt.ErrTokenExpired},
		{"expired long ago", good, t0.Add(48 * time.Hour), jwt.ErrTokenExpired},
		{"not yet valid", good, t0.Add(-31 * time.Second), jwt.ErrTokenNotValidYet},
		{"wrong issuer", edClaims(func(c *Claims) { c.Issuer = "evil" }), t0, jwt.ErrTokenInvalidIssuer},
		{"missing issuer", edClaims(func(c *Claims) { c.Issuer = "" }), t0, jwt.ErrTokenRequiredClaimMissing},
		{"wrong audience", edClaims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} }), t0, jwt.ErrTokenInvalidAudience},
		{"missing audience", edClaims(func(c *Claims) { c.Audience = nil }), t0, jwt.ErrTokenRequiredClaimMissing},
		{"missing exp", edClaims(func(c *Claims) { c.ExpiresAt = nil }), t0, jwt.ErrTokenRequiredClaimMissing},
		{"alg none", header + "." + payload + ".", t0, nil},
		{"alg none with signature of real token", header + "." + payload + "." + goodParts[2], t0, nil},
		{"alg none uppercase", b64url(t, map[string]string{"alg": "NONE", "typ": "JWT"}) + "." + payload + ".", t0, nil},
		{"HS256 with raw public key", sign(t, jwt.SigningMethodHS256, []byte(k.Public), validClaims()), t0, jwt.ErrTokenSignatureInvalid},
		{"HS256 with public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, validClaims()), t0, jwt.ErrTokenSignatureInvalid},
		{"HS512 with raw public key", sign(t, jwt.SigningMethodHS512, []byte(k.Public), validClaims()), t0, jwt.ErrTokenSignatureInvalid},
		{"other Ed25519 key", sign(t, jwt.SigningMethodEdDSA, other.Private, validClaims()), t0, jwt.ErrTokenSignatureInvalid},
		{"tampered payload", goodParts[0] + "." + b64url(t, func() Claims { c := validClaims(); c.Role = "admin"; return c }()) + "." + goodParts[2], t0, jwt.ErrTokenSignatureInvalid},
		{"truncated signature", good[:len(good)-4], t0, nil},
		{"bad role", edClaims(func(c *Claims) { c.Role = "superuser" }), t0, nil},
		{"provider role", edClaims(func(c *Claims) { c.Role = "provider" }), t0, nil},
		{"missing role", mapClaims(func(c jwt.MapClaims) { delete(c, "role") }), t0, nil},
		{"bad level", edClaims(func(c *Claims) { c.Level = "city" }), t0, nil},
		{"missing level", mapClaims(func(c jwt.MapClaims) { delete(c, "level") }), t0, nil},
		{"empty org", edClaims(func(c *Claims) { c.Org = "" }), t0, nil},
		{"bad jur", edClaims(func(c *Claims) { c.Jur = "guangdong" }), t0, nil},
		{"missing jur", mapClaims(func(c jwt.MapClaims) { delete(c, "jur") }), t0, nil},
		{"role of wrong type", mapClaims(func(c jwt.MapClaims) { c["role"] = 1 }), t0, nil},
		{"exp of wrong type", mapClaims(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), t0, nil},
		{"empty", "", t0, jwt.ErrTokenMalformed},
		{"garbage", "not.a.jwt", t0, jwt.ErrTokenMalformed},
		{"two parts", goodParts[0] + "." + goodParts[1], t0, jwt.ErrTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.Verifier(fixedNow(tt.now)).Verify(tt.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", got)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v does not wrap %v", err, tt.is)
			}
			if got != (tocsin.Actor{}) {
				t.Fatalf("non-zero actor on error: %+v", got)
			}
		})
	}
}

func TestVerifierWithoutKey(t *testing.T) {
	k := mustKeys(t)
	tok, err := k.Issue(validActor(), t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*Verifier{
		"nil verifier": nil,
		"empty keys":   (&Keys{}).Verifier(nil),
		"nil keys":     (*Keys)(nil).Verifier(nil),
	} {
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: err = %v, want ErrInvalidToken", name, err)
		}
	}
	// A Keys with only the private half still verifies.
	if _, err := (&Keys{Private: k.Private}).Verifier(fixedNow(t0)).Verify(tok); err != nil {
		t.Errorf("private-only keys: %v", err)
	}
	// A nil time func means time.Now.
	live, err := k.Issue(validActor(), time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verifier(nil).Verify(live); err != nil {
		t.Errorf("nil now func: %v", err)
	}
}

func TestClaimsAudienceJSON(t *testing.T) {
	tests := []struct {
		aud  jwt.ClaimStrings
		want string
	}{
		{nil, ""},
		{jwt.ClaimStrings{"tocsin"}, `"tocsin"`},
		{jwt.ClaimStrings{"a", "b"}, `["a","b"]`},
	}
	for _, tt := range tests {
		c := validClaims()
		c.Audience = tt.aud
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if got := string(m["aud"]); got != tt.want {
			t.Errorf("aud %v encoded as %s, want %s", tt.aud, got, tt.want)
		}
		if string(m["role"]) != `"department"` || string(m["iss"]) != `"tocsin"` {
			t.Errorf("other claims lost: %s", b)
		}
		var back Claims
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if len(back.Audience) != len(tt.aud) {
			t.Errorf("round trip aud = %v, want %v", back.Audience, tt.aud)
		}
	}
}

func FuzzVerify(f *testing.F) {
	k := mustKeys(f)
	good, err := k.Issue(validActor(), t0, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(b64url(f, map[string]string{"alg": "none"}) + "." + parts[1] + ".")
	f.Add(sign(f, jwt.SigningMethodHS256, []byte(k.Public), validClaims()))
	f.Add(sign(f, jwt.SigningMethodEdDSA, k.Private, jwt.MapClaims{"iss": Issuer, "aud": []any{1, nil}, "exp": "x", "role": map[string]any{}}))
	v := k.Verifier(fixedNow(t0))
	f.Fuzz(func(t *testing.T, token string) {
		a, err := v.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		if validateActor(a) != nil || a.Subject == "" {
			t.Fatalf("accepted invalid actor %+v", a)
		}
	})
}

// A verifier remembers a token's signature, not its validity: the same
// token checked again is refused once it has expired or before it is
// valid, and a token changed by a byte is checked afresh.
func TestVerifierRemembersOnlyTheSignature(t *testing.T) {
	k := mustKeys(t)
	tok, err := k.Issue(validActor(), t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	v := k.Verifier(func() time.Time { return now })
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{t0, true},
		{t0.Add(30 * time.Minute), true}, // from the cache
		{t0.Add(time.Hour + 31*time.Second), false},
		{t0.Add(-31 * time.Second), false},
		{t0.Add(time.Minute), true},
	} {
		now = tc.at
		got, err := v.Verify(tok)
		if (err == nil) != tc.ok || (tc.ok && got != validActor()) {
			t.Errorf("at %v: %+v, %v; want ok %v", tc.at, got, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			t.Errorf("at %v: %v does not wrap ErrInvalidToken", tc.at, err)
		}
	}
	// Change the third character from the end: six bits of the
	// signature's byte 62, which vary freely. The last two characters
	// hold byte 63, the top of Ed25519's S (below 2^253, so mostly
	// zero bits) and two bits of padding: they read "AA" one signature
	// in sixteen, so overwriting them with "AA" forged nothing then.
	i := len(tok) - 3
	forged := tok[:i] + map[bool]string{true: "B", false: "A"}[tok[i] == 'A'] + tok[i+1:]
	if _, err := v.Verify(forged); err == nil {
		t.Error("a token with a changed signature verified")
	}
}
