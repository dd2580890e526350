package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func (s *Server) organisationRoutes() chi.Router {
	r := chi.NewRouter()
	r.Get("/", s.handle(s.listOrganisations))
	r.Post("/", s.handle(s.putOrganisation))
	r.Route("/{id}/webhook", s.webhookRoutes)
	return r
}

func requireAdmin(r *http.Request) error {
	if actor(r).Role != tocsin.RoleAdmin {
		return tocsin.Errorf(tocsin.CodeForbidden, "only an admin may manage organisations")
	}
	return nil
}

func (s *Server) listOrganisations(w http.ResponseWriter, r *http.Request) error {
	orgs, err := s.Service.Organisations(r.Context(), actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"organisations": orgs})
	return nil
}

// putOrganisation creates or replaces an organisation and, with a password,
// its web login (username = organisation id).
func (s *Server) putOrganisation(w http.ResponseWriter, r *http.Request) error {
	if err := requireAdmin(r); err != nil {
		return err
	}
	var body struct {
		tocsin.Organisation
		Password string `json:"password,omitempty"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	o := body.Organisation
	o.CreatedAt = s.Service.Clock.Now()
	// Validate (and so normalise) here, so the account below names the
	// organisation as stored and the response shows what was stored.
	if err := tocsin.ValidateOrganisation(&o, s.Service.Regions); err != nil {
		return err
	}
	var acct *tocsin.Account
	if body.Password != "" {
		if len(body.Password) < 8 {
			return tocsin.Errorf(tocsin.CodeValidation, "password must be at least 8 characters").With("field", "password")
		}
		hash, err := s.Passwords(body.Password)
		if err != nil {
			return err
		}
		acct = &tocsin.Account{Username: o.ID, Org: o.ID, PasswordHash: hash, CreatedAt: o.CreatedAt}
	}
	if err := s.Service.PutOrganisation(r.Context(), o, acct); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, o)
	return nil
}
