package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Languages the UI speaks; the first is the default.
const (
	LangZH = "zh-CN"
	LangEN = "en"
)

var languages = []string{LangZH, LangEN}

// langCookie remembers a person's choice of language.
const langCookie = "lang"

// catalog is one language's messages, by key. Values are fmt formats when
// a key takes arguments.
type catalog map[string]string

// loadCatalogs reads i18n/<lang>.json for every language and checks that
// they define the same keys, and a name for every code the domain shows.
func loadCatalogs(files fs.FS) (map[string]catalog, error) {
	out := map[string]catalog{}
	for _, lang := range languages {
		data, err := fs.ReadFile(files, "i18n/"+lang+".json")
		if err != nil {
			return nil, fmt.Errorf("webui: catalog %s: %w", lang, err)
		}
		var c catalog
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("webui: catalog %s: %w", lang, err)
		}
		out[lang] = c
	}
	base := out[languages[0]]
	for _, lang := range languages[1:] {
		for k := range base {
			if _, ok := out[lang][k]; !ok {
				return nil, fmt.Errorf("webui: catalog %s lacks %q, which %s has", lang, k, languages[0])
			}
		}
		for k := range out[lang] {
			if _, ok := base[k]; !ok {
				return nil, fmt.Errorf("webui: catalog %s lacks %q, which %s has", languages[0], k, lang)
			}
		}
	}
	for _, k := range requiredKeys() {
		if _, ok := base[k]; !ok {
			return nil, fmt.Errorf("webui: catalogs lack %q", k)
		}
	}
	return out, nil
}

// requiredKeys names every domain code a page may show, so a new code
// without a translation stops the server at start rather than showing a
// raw code.
func requiredKeys() []string {
	var keys []string
	add := func(prefix string, values ...string) {
		for _, v := range values {
			keys = append(keys, prefix+"."+v)
		}
	}
	for _, v := range tocsin.Statuses {
		add("status", string(v))
	}
	for _, v := range []tocsin.DeliveryStatus{tocsin.DeliveryQueued, tocsin.DeliveryReceived, tocsin.DeliverySending,
		tocsin.DeliveryDelivered, tocsin.DeliveryFailed, tocsin.DeliveryStopped} {
		add("delivery", string(v))
	}
	for _, v := range tocsin.EmergencyTypes {
		add("etype", string(v))
	}
	for _, v := range tocsin.WarningLevels {
		add("level", string(v))
	}
	for _, v := range tocsin.ReasonCodes {
		add("reason", string(v))
	}
	add("posthoc", string(tocsin.PostHocDue), string(tocsin.PostHocFiled), string(tocsin.PostHocReviewed))
	add("verdict", string(tocsin.PostHocAccepted), string(tocsin.PostHocNotEmergency))
	add("role", string(tocsin.RoleAdmin), string(tocsin.RoleRegulator), string(tocsin.RoleDepartment))
	add("action", "filed", "approved", "rejected", "withdrawn", "cancelled", "released", "completed",
		"dispatch_failed", "resent", "late", "post_hoc_filed", "post_hoc_reviewed", "post_hoc_due_set",
		"post_hoc_amended", "correction_filed", "superseded", "expired")
	for _, k := range tocsin.NoticeKinds {
		add("inbox.kind", string(k))
	}
	for _, c := range []tocsin.Code{tocsin.CodeInvalid, tocsin.CodeUnauthorized, tocsin.CodeForbidden, tocsin.CodeNotFound,
		tocsin.CodeConflict, tocsin.CodeTooLarge, tocsin.CodeUnsupportedMedia, tocsin.CodeValidation, tocsin.CodeTooLate,
		tocsin.CodeUnknownRegion, tocsin.CodeReasonRequired, tocsin.CodeCalendarMissing, tocsin.CodeIdempotencyReuse,
		tocsin.CodeRateLimited, tocsin.CodeUnavailable, tocsin.CodeInternal, tocsin.CodeNotImmediate} {
		add("error", string(c))
	}
	return keys
}

// localizer speaks one language.
type localizer struct {
	Lang string
	c    catalog
}

// T returns the message for key, formatted with args. A missing key is an
// error, so a template that names one fails its render (and its test).
func (l localizer) T(key string, args ...any) (string, error) {
	msg, ok := l.c[key]
	if !ok {
		return "", fmt.Errorf("no %s message %q", l.Lang, key)
	}
	if len(args) > 0 {
		return fmt.Sprintf(msg, args...), nil
	}
	return msg, nil
}

// S is T for Go code, where a missing key (caught by the tests) shows as
// the key itself.
func (l localizer) S(key string, args ...any) string {
	msg, err := l.T(key, args...)
	if err != nil {
		return key
	}
	return msg
}

// Code names a domain code in the language: prefix "status" and value
// "approved" read the message "status.approved". An unknown value shows
// as itself.
func (l localizer) Code(prefix string, value any) string {
	v := fmt.Sprint(value)
	if msg, ok := l.c[prefix+"."+v]; ok {
		return msg
	}
	return v
}

// Has reports whether key has a message.
func (l localizer) Has(key string) bool {
	_, ok := l.c[key]
	return ok
}

type langKey struct{}

// langFrom returns the language negotiated for the request.
func langFrom(ctx context.Context) string {
	if l, ok := ctx.Value(langKey{}).(string); ok {
		return l
	}
	return LangZH
}

// negotiateLanguage picks the language: the lang cookie, else the
// Accept-Language header, else Chinese.
func (s *Server) negotiateLanguage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lang := ""
		if c, err := r.Cookie(langCookie); err == nil && slices.Contains(languages, c.Value) {
			lang = c.Value
		} else {
			lang = fromAcceptLanguage(r.Header.Get("Accept-Language"))
		}
		w.Header().Add("Vary", "Accept-Language, Cookie")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), langKey{}, lang)))
	})
}

// fromAcceptLanguage returns the supported language the header prefers
// most (RFC 9110, section 12.5.4), or Chinese.
func fromAcceptLanguage(header string) string {
	best, bestQ := LangZH, -1.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		lang := ""
		switch primary {
		case "zh":
			lang = LangZH
		case "en":
			lang = LangEN
		}
		if lang != "" && q > 0 && q > bestQ {
			best, bestQ = lang, q
		}
	}
	return best
}

// switchLanguage sets the lang cookie and goes back to the page the switch
// was on.
func (s *Server) switchLanguage(w http.ResponseWriter, r *http.Request) error {
	lang := r.PostFormValue("lang")
	if !slices.Contains(languages, lang) {
		return tocsin.Errorf(tocsin.CodeValidation, "unknown language %q", lang).With("field", "lang")
	}
	http.SetCookie(w, &http.Cookie{
		Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, HttpOnly: true,
	})
	http.Redirect(w, r, localPath(r.PostFormValue("next"), "/"), http.StatusSeeOther)
	return nil
}

// localPath returns p if it is a path on this site, and def otherwise, so
// a redirect target taken from a form never leaves the site.
func localPath(p, def string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.ContainsAny(p, "\r\n\t\\") {
		return def
	}
	return p
}

// otherLanguages lists the languages a page offers to switch to, in their
// own names.
func otherLanguages(current string) []langChoice {
	names := map[string]string{LangZH: "中文", LangEN: "English"}
	var out []langChoice
	for _, l := range slices.Sorted(maps.Keys(names)) {
		if l != current {
			out = append(out, langChoice{Code: l, Name: names[l]})
		}
	}
	return out
}

type langChoice struct{ Code, Name string }

// duration says a Go duration ("30s", "2m0s", as events record them) in
// the language: 30 秒, 2 分钟. Anything else shows as it came.
func (l localizer) duration(v string) string {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return v
	}
	switch {
	case d%time.Hour == 0:
		return l.S("duration.hours", int(d/time.Hour))
	case d%time.Minute == 0:
		return l.S("duration.minutes", int(d/time.Minute))
	}
	return l.S("duration.seconds", int(d.Round(time.Second)/time.Second))
}
