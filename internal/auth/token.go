package auth

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Claims is the payload of a Tocsin token: the registered claims plus the
// actor's role, organisation, level and jurisdiction.
type Claims struct {
	jwt.RegisteredClaims
	Role  string `json:"role"`
	Org   string `json:"org"`
	Level string `json:"level"`
	Jur   string `json:"jur"`
	// Kind is a [tocsin.CredentialKind]; absent means a service token.
	Kind string `json:"kind,omitempty"`
	// SID is a web session's id (also its "jti").
	SID string `json:"sid,omitempty"`
}

// MarshalJSON encodes c like the default encoding except that a
// single-valued audience is written as a plain string ("aud":"tocsin"), as
// the API documents, rather than as a one-element array. Decoding accepts
// both forms.
func (c Claims) MarshalJSON() ([]byte, error) {
	type plain Claims // drops this method, avoiding recursion
	var aud any
	switch len(c.Audience) {
	case 0:
	case 1:
		aud = c.Audience[0]
	default:
		aud = []string(c.Audience)
	}
	return json.Marshal(struct {
		plain
		Audience any `json:"aud,omitempty"` // shadows RegisteredClaims.Audience
	}{plain(c), aud})
}

// validMethods is the only signing algorithm ever accepted.
var validMethods = []string{jwt.SigningMethodEdDSA.Alg()}

// leeway is the clock skew tolerated when checking exp and nbf.
const leeway = 30 * time.Second

// Issue signs a token for a, valid from now for ttl. The subject is
// a.Subject, or a.Org if that is empty; the token gets a random "jti".
// It fails if a is not a valid token holder (role admin, regulator or
// department; a known level; a non-empty organisation; a jurisdiction that
// is "national" or a 6-digit region code) or if ttl is not positive.
func (k *Keys) Issue(a tocsin.Actor, now time.Time, ttl time.Duration) (string, error) {
	jti, err := tocsin.NewCredentialID()
	if err != nil {
		return "", fmt.Errorf("auth: issue: %w", err)
	}
	return k.IssueKind(tocsin.CredentialService, jti, a, now, ttl)
}

// IssueKind signs a token of the given kind whose credential id is id:
// the "jti" of every kind, and the "sid" of a session too. A session
// token's audience is [WebAudience], so the API refuses it. The role,
// level and jurisdiction claims are written for compatibility; Tocsin
// reads them from the stored organisation instead (see
// [tocsin.Service.Authenticate]).
func (k *Keys) IssueKind(kind tocsin.CredentialKind, id string, a tocsin.Actor, now time.Time, ttl time.Duration) (string, error) {
	if k == nil || len(k.Private) != ed25519.PrivateKeySize {
		return "", errors.New("auth: issue: no private key")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: issue: ttl must be positive, got %v", ttl)
	}
	if err := validateActor(a); err != nil {
		return "", fmt.Errorf("auth: issue: %w", err)
	}
	if id == "" {
		return "", errors.New("auth: issue: empty credential id")
	}
	aud, sid := Audience, ""
	if kind == tocsin.CredentialSession {
		aud, sid = WebAudience, id
	}
	sub := a.Subject
	if sub == "" {
		sub = a.Org
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{aud},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        id,
		},
		Role:  string(a.Role),
		Org:   a.Org,
		Level: string(a.Level),
		Jur:   a.Jurisdiction,
		Kind:  string(kind),
		SID:   sid,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(k.Private)
	if err != nil {
		return "", fmt.Errorf("auth: issue: sign: %w", err)
	}
	return s, nil
}

// Verifier checks tokens against one public key. It is safe for concurrent
// use.
type Verifier struct {
	pub       ed25519.PublicKey
	audience  string
	parser    *jwt.Parser
	validator *jwt.Validator // the parser's claim checks, for a cached token
	verified  verifiedCache
}

// verifiedCache remembers tokens whose signature checked, with what they
// said: an API client sends the same token with every request, and the
// Ed25519 check was 6 % of all CPU under load. Only the signature is
// remembered; the claims' times are checked again on every use, and
// whether the credential is revoked is the store's to say
// (tocsin.Service.Authenticate). Bounded: when full it starts afresh.
type verifiedCache struct {
	mu     sync.Mutex
	tokens map[string]verifiedToken
}

type verifiedToken struct {
	actor  tocsin.Actor
	claims *Claims
}

// maxVerified bounds the cache: far more tokens than clients in use at
// once, a few MB at most.
const maxVerified = 4096

func (c *verifiedCache) get(token string) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[token]
	return t, ok
}

func (c *verifiedCache) put(token string, t verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil || len(c.tokens) >= maxVerified {
		c.tokens = make(map[string]verifiedToken)
	}
	c.tokens[token] = t
}

// Verifier returns a Verifier of API tokens (audience [Audience]) for k's
// public key that reads the current time from now (time.Now if nil).
func (k *Keys) Verifier(now func() time.Time) *Verifier {
	return k.verifier(Audience, now)
}

// WebVerifier is like Verifier for web session tokens (audience
// [WebAudience]).
func (k *Keys) WebVerifier(now func() time.Time) *Verifier {
	return k.verifier(WebAudience, now)
}

func (k *Keys) verifier(audience string, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	var pub ed25519.PublicKey
	if k != nil {
		pub = k.Public
		if pub == nil && len(k.Private) == ed25519.PrivateKeySize {
			pub = k.Private.Public().(ed25519.PublicKey)
		}
	}
	checks := []jwt.ParserOption{
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
		jwt.WithLeeway(leeway),
	}
	return &Verifier{
		pub: pub, audience: audience,
		parser:    jwt.NewParser(append(checks, jwt.WithValidMethods(validMethods))...),
		validator: jwt.NewValidator(checks...),
	}
}

// Verify checks token's signature (EdDSA only), issuer, audience, expiry
// (required) and not-before, with 30 seconds of leeway, then its role,
// level, organisation and jurisdiction claims, and returns the actor it
// names. An empty "sub" defaults to the organisation. Every error wraps
// [ErrInvalidToken].
func (v *Verifier) Verify(token string) (tocsin.Actor, error) {
	a, _, err := v.verify(token)
	return a, err
}

// VerifyToken checks token as Verify does and returns the credential it
// presents: kind, id, organisation, subject and lifetime, for
// [tocsin.Service.Authenticate] to look up. A session token ("sid") is
// accepted only by a web verifier and a web verifier accepts nothing
// else, whatever the audience says.
func (v *Verifier) VerifyToken(token string) (tocsin.Credential, error) {
	a, claims, err := v.verify(token)
	if err != nil {
		return tocsin.Credential{}, err
	}
	kind := tocsin.CredentialKind(claims.Kind)
	if kind == "" {
		kind = tocsin.CredentialService
	}
	id := claims.ID
	if kind == tocsin.CredentialSession {
		id = claims.SID
	}
	if (kind == tocsin.CredentialSession) != (v.audience == WebAudience) {
		return tocsin.Credential{}, fmt.Errorf("%w: a %s token is not accepted here", ErrInvalidToken, kind)
	}
	if id == "" && kind != tocsin.CredentialCLI {
		return tocsin.Credential{}, fmt.Errorf("%w: no credential id", ErrInvalidToken)
	}
	c := tocsin.Credential{ID: id, Kind: kind, Org: a.Org, Subject: a.Subject}
	if claims.IssuedAt != nil {
		c.IssuedAt = claims.IssuedAt.Time
	}
	if claims.ExpiresAt != nil {
		c.ExpiresAt = claims.ExpiresAt.Time
	}
	return c, nil
}

func (v *Verifier) verify(token string) (tocsin.Actor, *Claims, error) {
	if v == nil || len(v.pub) != ed25519.PublicKeySize {
		return tocsin.Actor{}, nil, fmt.Errorf("%w: no public key", ErrInvalidToken)
	}
	if t, ok := v.verified.get(token); ok {
		if err := v.validator.Validate(t.claims); err != nil {
			return tocsin.Actor{}, nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
		}
		claims := *t.claims // the caller's own copy
		return t.actor, &claims, nil
	}
	var claims Claims
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// WithValidMethods has already rejected every other alg; this is
		// a second, type-level guard.
		if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return v.pub, nil
	})
	if err != nil {
		return tocsin.Actor{}, nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	a := tocsin.Actor{
		Subject:      claims.Subject,
		Role:         tocsin.Role(claims.Role),
		Org:          claims.Org,
		Level:        tocsin.Level(claims.Level),
		Jurisdiction: claims.Jur,
	}
	if a.Subject == "" {
		a.Subject = a.Org
	}
	if err := validateActor(a); err != nil {
		return tocsin.Actor{}, nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	kept := claims
	v.verified.put(token, verifiedToken{actor: a, claims: &kept})
	return a, &claims, nil
}

// validateActor checks the fields a token carries.
func validateActor(a tocsin.Actor) error {
	if !a.Role.Valid() {
		return fmt.Errorf("invalid role %q", a.Role)
	}
	if !a.Level.Valid() {
		return fmt.Errorf("invalid level %q", a.Level)
	}
	if a.Org == "" {
		return errors.New("empty organisation")
	}
	if !validJurisdiction(a.Jurisdiction) {
		return fmt.Errorf("invalid jurisdiction %q", a.Jurisdiction)
	}
	return nil
}

// validJurisdiction reports whether j is "national" or a 6-digit region
// code.
func validJurisdiction(j string) bool {
	if j == tocsin.National {
		return true
	}
	if len(j) != 6 {
		return false
	}
	for i := 0; i < len(j); i++ {
		if j[i] < '0' || j[i] > '9' {
			return false
		}
	}
	return true
}
