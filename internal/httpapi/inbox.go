package httpapi

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// inboxRoutes serve the caller's organisation's notifications.
func (s *Server) inboxRoutes() chi.Router {
	r := chi.NewRouter()
	r.Get("/", s.handle(s.listInbox))
	r.Post("/{id}/read", s.handle(s.markRead))
	return r
}

func (s *Server) listInbox(w http.ResponseWriter, r *http.Request) error {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return tocsin.Errorf(tocsin.CodeValidation, "limit must be a positive whole number").With("field", "limit")
		}
		limit = n
	}
	page, err := s.Service.Inbox(r.Context(), actor(r), limit, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) markRead(w http.ResponseWriter, r *http.Request) error {
	n, err := s.Service.MarkRead(r.Context(), actor(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

// webhookRoutes manage an organisation's webhook, under
// /organisations/{id}/webhook.
func (s *Server) webhookRoutes(r chi.Router) {
	r.Get("/", s.handle(s.getWebhook))
	r.Put("/", s.handle(s.putWebhook))
	r.Delete("/", s.handle(s.deleteWebhook))
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	st, err := s.Service.GetWebhook(r.Context(), actor(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// putWebhook registers the webhook and answers with its secret: the only
// time it is shown.
func (s *Server) putWebhook(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		URL string `json:"url"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	hook, err := s.Service.SetWebhook(r.Context(), actor(r), chi.URLParam(r, "id"), body.URL)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"org": hook.Org, "url": hook.URL, "secret": hook.Secret, "created_at": hook.CreatedAt,
		"signature": "Tocsin-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" with the secret>",
	})
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := s.Service.RemoveWebhook(r.Context(), actor(r), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
