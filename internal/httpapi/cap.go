package httpapi

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/cap"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// CAP 1.2 over HTTP: a broadcast's alert (GET /api/v1/broadcasts/{id}/cap),
// the Atom feed of public alerts (GET /feeds/alerts.atom), and filings sent
// as CAP alerts (POST /api/v1/broadcasts with Content-Type
// application/cap+xml, or application/xml carrying a CAP 1.2 alert).

// feedScan bounds how many of the most recently filed released broadcasts
// the feed looks through for its entries.
const feedScan = 5 * tocsin.MaxPageSize

// xmlMediaType reports whether a body of this media type is read as CAP.
func xmlMediaType(contentType string) (mediaType string, ok bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", false
	}
	switch mt {
	case cap.MediaType, "application/xml", "text/xml":
		return mt, true
	}
	return mt, false
}

// readFiling reads a filing from the request body: a CAP 1.2 alert when
// the body is XML, JSON otherwise. A CAP alert without an Idempotency-Key
// gets one from its sender and identifier, which CAP makes unique, so a
// warning system that delivers an alert twice files it once.
func (s *Server) readFiling(r *http.Request, key *string, correction bool) (tocsin.Filing, error) {
	var f tocsin.Filing
	mt, isXML := xmlMediaType(r.Header.Get("Content-Type"))
	if !isXML {
		return f, decodeJSON(r, &f, false)
	}
	a, err := cap.Parse(r.Body)
	if errors.Is(err, cap.ErrNotCAP) && mt != cap.MediaType {
		return f, &tocsin.Error{Code: tocsin.CodeUnsupportedMedia,
			Message: "an XML request body must be an OASIS CAP 1.2 alert (" + cap.Namespace + "); other filings are JSON: " + tocsin.ErrorMessage(err), Err: err}
	}
	if err != nil {
		return f, err
	}
	if correction {
		f, err = a.Correction()
	} else {
		f, err = a.Filing()
	}
	if err != nil {
		return f, err
	}
	// An alert already in effect is an emergency to send now: a CAP
	// effective (or sent) time that has passed means at once, not "in
	// the past".
	if f.Emergency != nil && f.SendAt != nil && !f.SendAt.After(s.Service.Clock.Now()) {
		f.SendAt = nil
	}
	if *key == "" {
		*key = a.Key()
	}
	return f, nil
}

// broadcastCAP serves a broadcast as a CAP 1.2 alert. A released public
// alert (cap.Public) is readable by anyone; any other needs a token and the
// same jurisdiction as GET /broadcasts/{id}. A token that is presented is
// always checked.
func (s *Server) broadcastCAP(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	a, authenticated := ActorFrom(ctx)
	if !authenticated && r.Header.Get("Authorization") != "" {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			return tocsin.Errorf(tocsin.CodeUnauthorized, "the Authorization header must be Bearer <JWT>")
		}
		var err error
		if a, err = s.tokenActor(ctx, token); err != nil {
			return err
		}
		authenticated = true
	}
	var reader *tocsin.Actor
	if authenticated {
		reader = &a
	}
	b, original, err := s.Service.Alert(ctx, reader, id)
	if err != nil {
		return err
	}
	public := cap.Public(b)
	var opts []cap.Option
	if b.References != "" && b.Closure == nil {
		if original == nil {
			return tocsin.Errorf(tocsin.CodeNotFound, "broadcast %s corrects %s, which is no longer kept", b.ID, b.References)
		}
		opts = append(opts, cap.Original(original))
	}
	out, err := cap.Encode(b, s.regionFullName, s.publicBase(r), opts...)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", cap.MediaType+"; charset=utf-8")
	if public {
		w.Header().Set("Cache-Control", "public, max-age=60")
	} else {
		w.Header().Set("Cache-Control", "private, no-store")
	}
	_, _ = w.Write(out) // the client may be gone; nothing useful to do
	return nil
}

// alertFeed serves the Atom feed of released public alerts, each linking
// to its CAP. It needs no token: everything in it went out to the public.
func (s *Server) alertFeed(w http.ResponseWriter, r *http.Request) error {
	bs, err := s.Service.PublicAlerts(r.Context(), feedScan)
	if err != nil {
		return err
	}
	out, err := cap.AtomFeed(bs, s.publicBase(r), s.Service.Clock.Now())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", cap.AtomMediaType+"; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(out) // the client may be gone; nothing useful to do
	return nil
}

// regionFullName names a region for a CAP areaDesc: the full name
// ("广东省 广州市 天河区") when the directory has one.
func (s *Server) regionFullName(code string) string {
	if d, ok := s.Regions.(interface{ FullName(string) string }); ok {
		return d.FullName(code)
	}
	return s.Regions.Name(code)
}

// publicBase is the base of the absolute links in CAP and Atom documents:
// PublicURL when it is configured, and otherwise the address the server
// accepted the connection on. Never the request's Host or X-Forwarded-*
// headers: the client chooses those, and the documents are cached and
// served to everyone.
func (s *Server) publicBase(r *http.Request) string {
	if s.PublicURL != "" {
		return strings.TrimRight(s.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && addr.String() != "" {
		return scheme + "://" + addr.String()
	}
	return scheme + "://localhost"
}
