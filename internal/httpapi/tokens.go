package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// defaultTokenTTL is a service token's lifetime when the request names
// none.
const defaultTokenTTL = 24 * time.Hour

func (s *Server) tokenRoutes() chi.Router {
	r := chi.NewRouter()
	r.Get("/", s.handle(s.listTokens))
	r.Post("/", s.handle(s.issueToken))
	r.Delete("/{id}", s.handle(s.revokeToken))
	return r
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// tokenView is a service token as the API shows it; the JWT itself only
// once, when it is issued.
type tokenView struct {
	*tocsin.Credential
	Token        string       `json:"token,omitempty"`
	Role         tocsin.Role  `json:"role,omitempty"`
	Level        tocsin.Level `json:"level,omitempty"`
	Jurisdiction string       `json:"jurisdiction,omitempty"`
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	tokens, err := s.Service.Tokens(r.Context(), actor(r), r.URL.Query().Get("org"), s.now())
	if err != nil {
		return err
	}
	out := make([]tokenView, len(tokens))
	for i, c := range tokens {
		out[i] = tokenView{Credential: c}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

// issueToken mints a service token for a stored organisation, with the
// organisation's stored role, level and jurisdiction.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Org     string `json:"org"`
		Subject string `json:"subject,omitempty"`
		Name    string `json:"name,omitempty"`
		TTL     string `json:"ttl,omitempty"` // a Go duration such as "720h"
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	if actor(r).Role != tocsin.RoleAdmin {
		return tocsin.Errorf(tocsin.CodeForbidden, "only an admin may issue tokens")
	}
	if s.Tokens == nil {
		return tocsin.Errorf(tocsin.CodeUnavailable, "this server does not issue tokens")
	}
	ttl := defaultTokenTTL
	if body.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(body.TTL); err != nil {
			return tocsin.Errorf(tocsin.CodeValidation, "ttl %q is not a duration such as 720h", body.TTL).With("field", "ttl")
		}
	}
	now := s.now()
	c, org, err := s.Service.IssueToken(r.Context(), actor(r), tocsin.TokenRequest{
		Org: body.Org, Subject: body.Subject, Name: body.Name, TTL: ttl, Now: now})
	if err != nil {
		return err
	}
	a := tocsin.Actor{Subject: c.Subject, Role: org.Role, Org: org.ID, Level: org.Level, Jurisdiction: org.Jurisdiction}
	token, err := s.Tokens.IssueKind(tocsin.CredentialService, c.ID, a, now, ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tokenView{Credential: &c, Token: token, Role: org.Role, Level: org.Level, Jurisdiction: org.Jurisdiction})
	return nil
}

// revokeToken ends a service token (or a web session) at once.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.Service.RevokeCredential(r.Context(), actor(r), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
