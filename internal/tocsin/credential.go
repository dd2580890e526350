package tocsin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// CredentialKind says what a credential is for. A token names its kind,
// and each surface accepts only its own: the API takes service and CLI
// tokens, the web UI only sessions, so a session cookie is never an API
// credential.
type CredentialKind string

const (
	// CredentialSession is a web login, ended by logout.
	CredentialSession CredentialKind = "session"
	// CredentialService is an API token an admin issued to an
	// organisation's system; listed and revoked through the admin API.
	CredentialService CredentialKind = "service"
	// CredentialCLI is a token the command line signs with the data
	// folder's key to call the running server as its operator. It is not
	// stored: whoever holds the key can sign any token anyway, so a record
	// would protect nothing. It lives at most MaxCLITokenLifetime and acts
	// only for a stored admin organisation.
	CredentialCLI CredentialKind = "cli"
)

// kindName names a kind for messages.
func kindName(k CredentialKind) string {
	if k == CredentialSession {
		return "session"
	}
	return string(k) + " token"
}

// MaxCLITokenLifetime bounds a CLI token from issue to expiry.
const MaxCLITokenLifetime = 5 * time.Minute

// MaxServiceTokenLifetime bounds a service token an admin issues.
const MaxServiceTokenLifetime = 366 * 24 * time.Hour

// OperatorOrg is the operator's own organisation, the one CLI tokens act
// for unless told otherwise.
const OperatorOrg = "admin"

// Credential is a session or service token as the store keeps it. A token
// refers to it by ID (the JWT's "sid" or "jti"); removing the record
// revokes the token. Role, level and jurisdiction are never kept here:
// each request reads them from the organisation, so a change to it applies
// at once.
type Credential struct {
	ID      string         `json:"id"`
	Kind    CredentialKind `json:"kind"`
	Org     string         `json:"org"`
	Subject string         `json:"subject"` // the username, or the token's holder
	Name    string         `json:"name,omitempty"`
	// IssuedAt and ExpiresAt are real time (tokens expire in real time
	// whatever the demo clock says).
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	IssuedBy  string    `json:"issued_by,omitempty"`
}

// Audit actions about credentials. Sessions are not audited one by one
// (the access log has logins); tokens are, and so is every mass
// revocation.
const (
	AuditTokenIssued      = "token_issued"
	AuditTokenRevoked     = "token_revoked"
	AuditCredentialsEnded = "credentials_ended"
)

// NewCredentialID returns a random credential id: 128 bits in hex. Hex
// rather than base64url because operators pass the id on the command line
// (tocsin token revoke ID), where one starting with "-" would be read as
// a flag: about 1 base64url id in 64 did.
func NewCredentialID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("credential id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// unauthorized is the one error every failed authentication returns: the
// caller learns nothing about which part failed.
func unauthorized(format string, args ...any) error {
	return Errorf(CodeUnauthorized, format, args...)
}

// Authenticate returns the actor a verified token acts as. presented is
// what the token says (kind, id, organisation, subject, lifetime); only
// its identity is believed. The role, level and jurisdiction come from the
// stored organisation, read now, so a demotion or a move applies to the
// next request. A token whose record is gone (revoked, logged out), whose
// organisation is unknown, disabled or a provider, or whose record names
// another organisation is CodeUnauthorized.
func (s *Service) Authenticate(ctx context.Context, presented Credential) (Actor, error) {
	var a Actor
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		a, err = authenticate(tx, presented)
		return err
	})
	return a, err
}

func authenticate(tx ReadTx, p Credential) (Actor, error) {
	subject := p.Subject
	switch p.Kind {
	case CredentialCLI:
		if life := p.ExpiresAt.Sub(p.IssuedAt); p.IssuedAt.IsZero() || life <= 0 || life > MaxCLITokenLifetime {
			return Actor{}, unauthorized("a CLI token may live at most %s", MaxCLITokenLifetime)
		}
	case CredentialSession, CredentialService:
		c, err := tx.Credential(p.ID)
		if IsCode(err, CodeNotFound) || (err == nil && (c.Kind != p.Kind || c.Org != p.Org)) {
			return Actor{}, unauthorized("the %s has ended or was revoked", kindName(p.Kind))
		}
		if err != nil {
			return Actor{}, err
		}
		subject = c.Subject
	default:
		return Actor{}, unauthorized("unknown token kind %q", p.Kind)
	}
	o, err := tx.Organisation(p.Org)
	if IsCode(err, CodeNotFound) {
		return Actor{}, unauthorized("organisation %q is not registered", p.Org)
	}
	if err != nil {
		return Actor{}, err
	}
	switch {
	case o.Disabled:
		return Actor{}, unauthorized("organisation %q is disabled", o.ID)
	case !o.Role.Valid():
		return Actor{}, unauthorized("organisation %q (%s) holds no API or web credentials", o.ID, o.Role)
	case p.Kind == CredentialCLI && o.Role != RoleAdmin:
		return Actor{}, unauthorized("a CLI token acts only for an admin organisation, and %q is %s", o.ID, o.Role)
	}
	if subject == "" {
		subject = o.ID
	}
	return Actor{Subject: subject, Role: o.Role, Org: o.ID, Level: o.Level, Jurisdiction: o.Jurisdiction}, nil
}

// StartSession stores a web session for an account's organisation that
// has just signed in, and drops that organisation's credentials that
// expired before c.IssuedAt, so records do not pile up.
func (s *Service) StartSession(ctx context.Context, c Credential) error {
	c.Kind = CredentialSession
	return s.Store.Update(ctx, func(tx Tx) error {
		if err := dropExpired(tx, c.Org, c.IssuedAt); err != nil {
			return err
		}
		return tx.PutCredential(&c)
	})
}

// EndSession removes a web session (logout). An unknown id is not an
// error: the session is ended either way.
func (s *Service) EndSession(ctx context.Context, id string) error {
	return s.Store.Update(ctx, func(tx Tx) error {
		c, err := tx.Credential(id)
		if IsCode(err, CodeNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.Kind != CredentialSession {
			return Errorf(CodeInvalid, "credential %s is not a session", id)
		}
		return tx.DeleteCredential(id)
	})
}

// TokenRequest is what an admin asks for when issuing a service token.
type TokenRequest struct {
	Org     string
	Subject string // default: the organisation id
	Name    string
	TTL     time.Duration
	Now     time.Time // real time
}

// IssueToken records a service token for a stored organisation that may
// hold one (admin only). The caller signs the token with the returned
// record's id and the organisation's stored role, level and jurisdiction.
func (s *Service) IssueToken(ctx context.Context, by Actor, req TokenRequest) (Credential, *Organisation, error) {
	if by.Role != RoleAdmin {
		return Credential{}, nil, Errorf(CodeForbidden, "only an admin may issue tokens")
	}
	if req.TTL <= 0 || req.TTL > MaxServiceTokenLifetime {
		return Credential{}, nil, invalid("ttl", "a token's lifetime must be positive and at most %s", MaxServiceTokenLifetime)
	}
	id, err := NewCredentialID()
	if err != nil {
		return Credential{}, nil, err
	}
	c := Credential{ID: id, Kind: CredentialService, Org: req.Org, Subject: req.Subject, Name: req.Name,
		IssuedAt: req.Now, ExpiresAt: req.Now.Add(req.TTL), IssuedBy: by.String()}
	if c.Subject == "" {
		c.Subject = c.Org
	}
	var org *Organisation
	err = s.Store.Update(ctx, func(tx Tx) error {
		var err error
		if org, err = tx.Organisation(req.Org); err != nil {
			return err
		}
		if org.Disabled || !org.Role.Valid() {
			return invalid("org", "organisation %q (%s) may not hold a token", org.ID, org.Role)
		}
		if err := dropExpired(tx, c.Org, c.IssuedAt); err != nil {
			return err
		}
		if err := tx.PutCredential(&c); err != nil {
			return err
		}
		return tx.Audit(AuditEntry{At: s.now(), Action: AuditTokenIssued, Org: by.Org, By: by.String(),
			Source: SourceFrom(ctx), Target: c.Org,
			Note: fmt.Sprintf("token %s for %s until %s", c.ID, c.Subject, c.ExpiresAt.UTC().Format(time.RFC3339))})
	})
	if err != nil {
		return Credential{}, nil, err
	}
	return c, org, nil
}

// Tokens lists the service tokens, of one organisation or (org "") all,
// that have not expired by now (admin only).
func (s *Service) Tokens(ctx context.Context, by Actor, org string, now time.Time) ([]*Credential, error) {
	if by.Role != RoleAdmin {
		return nil, Errorf(CodeForbidden, "only an admin may list tokens")
	}
	var out []*Credential
	err := s.Store.View(ctx, func(tx ReadTx) error {
		all, err := tx.Credentials(org)
		for _, c := range all {
			if c.Kind == CredentialService && c.ExpiresAt.After(now) {
				out = append(out, c)
			}
		}
		return err
	})
	return out, err
}

// RevokeCredential ends a service token or session at once (admin only).
func (s *Service) RevokeCredential(ctx context.Context, by Actor, id string) error {
	if by.Role != RoleAdmin {
		return Errorf(CodeForbidden, "only an admin may revoke tokens")
	}
	return s.Store.Update(ctx, func(tx Tx) error {
		c, err := tx.Credential(id)
		if err != nil {
			return err
		}
		if err := tx.DeleteCredential(id); err != nil {
			return err
		}
		return tx.Audit(AuditEntry{At: s.now(), Action: AuditTokenRevoked, Org: by.Org, By: by.String(),
			Source: SourceFrom(ctx), Target: c.Org, Note: fmt.Sprintf("%s %s of %s", c.Kind, c.ID, c.Subject)})
	})
}

// endCredentials removes every session and token of org, so that nothing
// issued before a change to it (its authority, its password, its being
// disabled) outlives the change. It audits how many it ended.
func (s *Service) endCredentials(ctx context.Context, tx Tx, org, why string) error {
	all, err := tx.Credentials(org)
	if err != nil {
		return err
	}
	for _, c := range all {
		if err := tx.DeleteCredential(c.ID); err != nil {
			return err
		}
	}
	if len(all) == 0 {
		return nil
	}
	return tx.Audit(AuditEntry{At: s.now(), Action: AuditCredentialsEnded, Source: SourceFrom(ctx), Target: org,
		Note: fmt.Sprintf("%d sessions and tokens ended: %s", len(all), why)})
}

// authorityChanged reports whether an organisation's update changes what
// its credentials may do.
func authorityChanged(old, o *Organisation) bool {
	return old.Role != o.Role || old.Level != o.Level || old.Jurisdiction != o.Jurisdiction ||
		old.SenderCode != o.SenderCode || old.Disabled != o.Disabled
}

// passwordChanged reports whether acct replaces a stored account.
func passwordChanged(tx Tx, acct *Account) bool {
	if acct == nil {
		return false
	}
	old, err := tx.Account(acct.Username)
	return err == nil && old.PasswordHash != acct.PasswordHash
}

// dropExpired removes org's credentials that expired before now.
func dropExpired(tx Tx, org string, now time.Time) error {
	all, err := tx.Credentials(org)
	if err != nil {
		return err
	}
	for _, c := range all {
		if !c.ExpiresAt.After(now) {
			if err := tx.DeleteCredential(c.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// EnsureOperator creates the operator's organisation (OperatorOrg, an
// admin) if it is missing, so the command line's tokens have a stored
// organisation to act for on a fresh data folder. An existing one is left
// as it is, whatever its role.
func (s *Service) EnsureOperator(ctx context.Context) (bool, error) {
	created := false
	err := s.Store.Update(ctx, func(tx Tx) error {
		created = false
		if _, err := tx.Organisation(OperatorOrg); !IsCode(err, CodeNotFound) {
			return err
		}
		o := Organisation{ID: OperatorOrg, Name: "Tocsin operator", NameZH: "Tocsin 系统管理员", Role: RoleAdmin,
			Level: LevelNational, Jurisdiction: National, CreatedAt: s.now()}
		if err := tx.PutOrganisation(&o); err != nil {
			return err
		}
		created = true
		return tx.Audit(AuditEntry{At: s.now(), Action: AuditOrganisation, Source: SourceFrom(ctx), Target: o.ID,
			Note: "admin national national Tocsin operator; created at start"})
	})
	return created, err
}
