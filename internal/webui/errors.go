package webui

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/web"
)

// describe returns a person's reading of err in the language: a message
// from the catalog chosen by code, field or reason, and, when that
// message is only the generic one for the code, the domain's own (English)
// words as detail.
func describe(l localizer, err error) (msg, detail string) {
	code := tocsin.ErrorCode(err)
	details := tocsin.ErrorDetails(err)
	str := func(k string) string {
		if v, ok := details[k]; ok {
			return fmt.Sprint(v)
		}
		return ""
	}
	switch {
	case code == tocsin.CodeTooLate:
		return l.S("error.too_late.date", str("earliest_send_date")), ""
	case code == tocsin.CodeCalendarMissing && str("year") != "":
		return l.S("error.calendar_missing.year", str("year")), ""
	case code == tocsin.CodeValidation && str("field") == "content" && str("segments") != "":
		return l.S("error.validation_failed.segments", str("segments"), tocsin.MaxSegments), ""
	case code == tocsin.CodeUnknownRegion && str("region") != "":
		return l.S("error.unknown_region.code", str("region")), ""
	}
	for _, k := range []string{"reason", "field"} {
		if v := str(k); v != "" && l.Has("error."+string(code)+"."+v) {
			return l.S("error." + string(code) + "." + v), ""
		}
	}
	msg = l.S("error." + string(code))
	if code != tocsin.CodeInternal && code != tocsin.CodeUnavailable {
		detail = tocsin.ErrorMessage(err)
	}
	return msg, detail
}

type errorPage struct {
	page
	Status    int
	RequestID string
	Login     bool // offer the login page
}

// renderError is the one place an error becomes a page: the status from
// the code, the message from the catalog, internal details only in the
// log.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	code := tocsin.ErrorCode(err)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code = tocsin.CodeTooLarge
		err = tocsin.Errorf(code, "the form is larger than %d bytes", mbe.Limit)
	}
	status := httpapi.StatusOf(code)
	if status >= 500 {
		s.Log.ErrorContext(r.Context(), "web request failed", slog.String("path", r.URL.Path),
			slog.String("request_id", httpapi.RequestID(r.Context())), slog.Any("error", err))
	}
	p := errorPage{page: s.pageFor(r, ""), Status: status, RequestID: httpapi.RequestID(r.Context())}
	p.Error, p.Detail = describe(p.L, err)
	p.Login = status == http.StatusUnauthorized
	if code == tocsin.CodeRateLimited {
		if v, ok := tocsin.ErrorDetails(err)["retry_after"].(int); ok {
			w.Header().Set("Retry-After", strconv.Itoa(v))
		}
	}
	if rerr := s.render(w, r, status, "error", &p); rerr != nil {
		s.Log.ErrorContext(r.Context(), "error page failed", slog.Any("error", rerr))
		http.Error(w, http.StatusText(status), status)
	}
}

// ErrorText reads domain errors in the web catalogs' words, for the API's
// messages: one catalog of what went wrong, shared by the pages and the
// JSON errors.
type ErrorText struct {
	catalogs map[string]catalog
}

// LoadErrorText reads the catalogs from files (nil: the embedded web
// files).
func LoadErrorText(files fs.FS) (*ErrorText, error) {
	if files == nil {
		files = web.FS()
	}
	cats, err := loadCatalogs(files)
	if err != nil {
		return nil, err
	}
	return &ErrorText{catalogs: cats}, nil
}

// ErrorText is the server's catalogs as an ErrorText.
func (s *Server) ErrorText() *ErrorText { return &ErrorText{catalogs: s.views.catalogs} }

// Message words err in the language an Accept-Language header asks for,
// when it asks for one other than the API's English: ok is false for no
// header, English, or a language the catalogs lack.
func (e *ErrorText) Message(acceptLanguage string, err error) (msg, lang string, ok bool) {
	lang = fromAcceptLanguage(acceptLanguage)
	if lang == LangEN || !strings.Contains(strings.ToLower(acceptLanguage), "zh") {
		return "", "", false
	}
	l := localizer{Lang: lang, c: e.catalogs[lang]}
	msg, detail := describe(l, err)
	if field, _ := tocsin.ErrorDetails(err)["field"].(string); detail != "" && field != "" {
		msg += l.S("error.field", field) // the generic message: which field
	}
	return msg, lang, true
}
