package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// StatusOf maps a domain error code to its HTTP status. It is the only
// place that knows the mapping; the web UI's error pages use it too.
func StatusOf(code tocsin.Code) int {
	switch code {
	case tocsin.CodeInvalid:
		return http.StatusBadRequest
	case tocsin.CodeUnauthorized:
		return http.StatusUnauthorized
	case tocsin.CodeForbidden:
		return http.StatusForbidden
	case tocsin.CodeNotFound:
		return http.StatusNotFound
	case tocsin.CodeConflict:
		return http.StatusConflict
	case tocsin.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case tocsin.CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case tocsin.CodeValidation, tocsin.CodeTooLate, tocsin.CodeUnknownRegion,
		tocsin.CodeReasonRequired, tocsin.CodeCalendarMissing, tocsin.CodeIdempotencyReuse,
		tocsin.CodeNotImmediate:
		return http.StatusUnprocessableEntity
	case tocsin.CodeRateLimited:
		return http.StatusTooManyRequests
	case tocsin.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError renders err as {"error": {"code", "message", ...details}}.
// Internal errors are logged with the request id and shown only as such.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := tocsin.ErrorCode(err)
	status := StatusOf(code)
	if status >= 500 && !errors.Is(err, errClientGone) {
		s.Log.ErrorContext(r.Context(), "request failed",
			slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
	}
	body := map[string]any{}
	for k, v := range tocsin.ErrorDetails(err) {
		body[k] = v
	}
	body["code"] = code
	body["message"] = tocsin.ErrorMessage(err)
	if s.Localize != nil {
		if msg, lang, ok := s.Localize(r.Header.Get("Accept-Language"), err); ok {
			body["message"] = msg
			w.Header().Set("Content-Language", lang)
		}
		w.Header().Add("Vary", "Accept-Language")
	}
	if id := RequestID(r.Context()); id != "" {
		body["request_id"] = id
	}
	if code == tocsin.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tocsin"`)
	}
	writeJSON(w, status, map[string]any{"error": body})
}

var errClientGone = errors.New("client went away")
