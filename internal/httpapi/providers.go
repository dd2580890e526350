package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// ProviderRegistry registers providers with the dispatch transport.
type ProviderRegistry interface {
	// Register stores the provider, gives it a NATS login and consumer,
	// and returns its credentials (shown once).
	Register(ctx context.Context, p tocsin.Provider) (any, error)
	// LastSeen is when the provider was last seen pulling or reporting.
	LastSeen(provider string) (time.Time, bool)
}

func (s *Server) providerRoutes() chi.Router {
	r := chi.NewRouter()
	r.Get("/", s.handle(s.listProviders))
	r.Post("/", s.handle(s.registerProvider))
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
}

func (s *Server) listProviders(w http.ResponseWriter, r *http.Request) error {
	providers, err := s.Service.Providers(r.Context(), actor(r))
	if err != nil {
		return err
	}
	out := make([]ProviderView, len(providers))
	for i, p := range providers {
		v := ProviderView{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt, Consumer: p.ID, LastSeen: p.LastSeen}
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
