// Package auth issues and verifies Tocsin's bearer tokens and hashes
// passwords.
//
// Tokens are JWTs signed with Ed25519 ("EdDSA"); no other algorithm is ever
// accepted. The "iss" claim is "tocsin", as is the "aud" claim of API
// tokens ("tocsin-web" for web sessions); the private claims "role",
// "org", "level" and "jur" carry a [tocsin.Actor] for compatibility, and
// "kind" and "jti" (or "sid") name the stored credential the token
// stands for. Only the organisation and credential are believed: the
// server reads role, level and jurisdiction from its store. The key
// pair lives in the data folder as keys/jwt.pem (PKCS#8 PEM private key) and
// keys/jwt.pub.pem (PKIX PEM public key); see [LoadOrCreateKeys].
//
// Passwords are hashed with Argon2id and stored as PHC strings; see
// [HashPassword] and [VerifyPassword].
//
// The package knows nothing about HTTP: callers extract the bearer token and
// map [ErrInvalidToken] to a 401 themselves.
package auth

import "errors"

const (
	// Issuer is the "iss" claim of every Tocsin token.
	Issuer = "tocsin"
	// Audience is the "aud" claim of every API token.
	Audience = "tocsin"
	// WebAudience is the "aud" claim of a web session's token, so that a
	// session cookie is never accepted as an API bearer token.
	WebAudience = "tocsin-web"
)

// ErrInvalidToken is wrapped by every error [Verifier.Verify] returns, so a
// caller can map any verification failure to one response with errors.Is.
// The underlying jwt error (e.g. jwt.ErrTokenExpired) is wrapped too.
var ErrInvalidToken = errors.New("invalid token")
