package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// ProviderRegistry registers providers with the dispatch transport.
type ProviderRegistry interface {
	// Register stores the provider, gives it a NATS account, user and consumer,
	// and returns its credentials (shown once).
	Register(ctx context.Context, p tocsin.Provider) (any, error)
	// Rotate issues a provider new credentials (shown once), revoking
	// the old; Revoke revokes them (its connections close at once);
	// SetDisabled holds or releases its dispatches. Each returns
	// CodeNotFound for an unknown provider.
	Rotate(ctx context.Context, id string) (any, error)
	Revoke(ctx context.Context, id string) error
	SetDisabled(ctx context.Context, id string, disabled bool) error
	// LastSeen is when the provider was last seen pulling or reporting.
	LastSeen(provider string) (time.Time, bool)
}

func (s *Server) providerRoutes() chi.Router {
	r := chi.NewRouter()
	r.Get("/", s.handle(s.listProviders))
	r.Post("/", s.handle(s.registerProvider))
	r.Post("/{id}/rotate", s.handle(s.rotateProvider))
	r.Post("/{id}/revoke", s.handle(s.providerAction(func(ctx context.Context, id string) error { return s.Providers.Revoke(ctx, id) })))
	r.Post("/{id}/disable", s.handle(s.providerAction(func(ctx context.Context, id string) error { return s.Providers.SetDisabled(ctx, id, true) })))
	r.Post("/{id}/enable", s.handle(s.providerAction(func(ctx context.Context, id string) error { return s.Providers.SetDisabled(ctx, id, false) })))
	return r
}

// ProviderView is a provider as the API lists it; credentials never
// appear here.
type ProviderView struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Regions   []RegionView `json:"regions"`
	CreatedAt time.Time    `json:"created_at"`
	Consumer  string       `json:"consumer"`
	LastSeen  *time.Time   `json:"last_seen,omitempty"`
	// Disabled: its dispatches wait in the outbox. Credentials is
	// "active", "revoked" or "password" (registered before NATS accounts,
	// converted at the next start).
	Disabled    bool   `json:"disabled"`
	Credentials string `json:"credentials"`
	NATSAccount string `json:"nats_account,omitempty"`
}

func (s *Server) listProviders(w http.ResponseWriter, r *http.Request) error {
	providers, err := s.Service.Providers(r.Context(), actor(r))
	if err != nil {
		return err
	}
	out := make([]ProviderView, len(providers))
	for i, p := range providers {
		v := ProviderView{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt, Consumer: p.ID, LastSeen: p.LastSeen,
			Disabled: p.Disabled, Credentials: "active", NATSAccount: p.NATSAccount}
		switch {
		case p.NATSAccount == "" && p.NATSPasswordHash != "":
			v.Credentials = "password"
		case p.NATSUserKey == "":
			v.Credentials = "revoked"
		}
		for _, code := range p.Regions {
			v.Regions = append(v.Regions, RegionView{Code: code, Name: s.Regions.Name(code)})
		}
		if s.Providers != nil {
			if t, ok := s.Providers.LastSeen(p.ID); ok && (v.LastSeen == nil || t.After(*v.LastSeen)) {
				t = t.In(tocsin.Shanghai)
				v.LastSeen = &t
			}
		}
		out[i] = v
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
	return nil
}

func (s *Server) registerProvider(w http.ResponseWriter, r *http.Request) error {
	if actor(r).Role != tocsin.RoleAdmin {
		return tocsin.Errorf(tocsin.CodeForbidden, "only an admin may register providers")
	}
	var body struct {
		ID      string   `json:"id"`
		Name    string   `json:"name"`
		Regions []string `json:"regions"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	if s.Providers == nil {
		return tocsin.Errorf(tocsin.CodeUnavailable, "provider registration needs the dispatch transport, which is not running")
	}
	creds, err := s.Providers.Register(r.Context(), tocsin.Provider{ID: body.ID, Name: body.Name, Regions: body.Regions})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/providers/"+body.ID)
	writeJSON(w, http.StatusCreated, creds)
	return nil
}

// adminProviders checks that the caller may manage providers and that
// the registry runs.
func (s *Server) adminProviders(r *http.Request) error {
	if actor(r).Role != tocsin.RoleAdmin {
		return tocsin.Errorf(tocsin.CodeForbidden, "only an admin may manage providers")
	}
	if s.Providers == nil {
		return tocsin.Errorf(tocsin.CodeUnavailable, "provider management needs the dispatch transport, which is not running")
	}
	return nil
}

func (s *Server) rotateProvider(w http.ResponseWriter, r *http.Request) error {
	if err := s.adminProviders(r); err != nil {
		return err
	}
	creds, err := s.Providers.Rotate(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, creds)
	return nil
}

// providerAction runs f on the provider named in the path and answers
// with what it did.
func (s *Server) providerAction(f func(ctx context.Context, id string) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.adminProviders(r); err != nil {
			return err
		}
		id := chi.URLParam(r, "id")
		if err := f(r.Context(), id); err != nil {
			return err
		}
		action := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		writeJSON(w, http.StatusOK, map[string]any{"provider": id, "done": action})
		return nil
	}
}

func (s *Server) resend(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Provider string `json:"provider"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	if body.Provider == "" {
		return tocsin.Errorf(tocsin.CodeValidation, "provider is required").With("field", "provider")
	}
	b, err := s.Service.Resend(r.Context(), actor(r), chi.URLParam(r, "id"), body.Provider)
	return s.respond(w, r, b, err)
}
