package webui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Page templates: each is parsed with the layout and the partials, once
// per language.
var pageNames = []string{
	"login", "logout", "error", "review", "broadcasts", "new", "detail",
	"emergencies", "posthoc", "providers", "calendars", "inbox", "confirm",
}

// views holds every page's template in every language, parsed at start.
type views struct {
	pages    map[string]map[string]*template.Template // language, page
	catalogs map[string]catalog
	assets   map[string]string // static file name -> versioned URL
}

// templateKey finds {{t "key" ...}} calls, so keys the templates name are
// checked against the catalogs at start.
var templateKey = regexp.MustCompile(`\bt\s+"([^"]+)"`)

func loadViews(files fs.FS, regions *region.Divisions) (*views, error) {
	cats, err := loadCatalogs(files)
	if err != nil {
		return nil, err
	}
	v := &views{pages: map[string]map[string]*template.Template{}, catalogs: cats, assets: map[string]string{}}
	err = fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		name := strings.TrimPrefix(p, "static/")
		v.assets[name] = "/static/" + name + "?v=" + hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webui: static files: %w", err)
	}
	shared := []string{"templates/layout.html", "templates/partials.html"}
	for _, name := range append(shared, pageFiles()...) {
		src, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("webui: %w", err)
		}
		for _, m := range templateKey.FindAllSubmatch(src, -1) {
			if _, ok := cats[LangZH][string(m[1])]; !ok {
				return nil, fmt.Errorf("webui: %s names message %q, which the catalogs lack", name, m[1])
			}
		}
	}
	for _, lang := range languages {
		l := localizer{Lang: lang, c: cats[lang]}
		v.pages[lang] = map[string]*template.Template{}
		for _, page := range pageNames {
			t, err := template.New(page).Funcs(v.funcs(l, regions)).
				ParseFS(files, append(shared, "templates/"+page+".html")...)
			if err != nil {
				return nil, fmt.Errorf("webui: template %s: %w", page, err)
			}
			if t.Lookup("layout") == nil || t.Lookup("content") == nil {
				return nil, fmt.Errorf("webui: template %s must define content and use the layout", page)
			}
			v.pages[lang][page] = t
		}
	}
	return v, nil
}

func pageFiles() []string {
	out := make([]string, len(pageNames))
	for i, p := range pageNames {
		out[i] = "templates/" + p + ".html"
	}
	return out
}

// TimeLayout is how times are shown: Asia/Shanghai, to the minute.
const TimeLayout = "2006-01-02 15:04"

func (v *views) funcs(l localizer, regions *region.Divisions) template.FuncMap {
	return template.FuncMap{
		"t":    l.T,
		"code": l.Code,
		"asset": func(name string) (string, error) {
			if u, ok := v.assets[name]; ok {
				return u, nil
			}
			return "", fmt.Errorf("no static file %q", name)
		},
		"datetime": func(t any) string { return formatTime(t, TimeLayout) },
		"date":     func(t any) string { return formatTime(t, tocsin.DateLayout) },
		"region": func(code string) string {
			if n := regions.FullName(code); n != "" {
				return n
			}
			return code
		},
	}
}

func formatTime(v any, layout string) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x != nil {
			t = *x
		}
	}
	if t.IsZero() {
		return "—"
	}
	return t.In(tocsin.Shanghai).Format(layout)
}

// agoAt says how long before now t was, roughly.
func (l localizer) agoAt(now, t time.Time) string {
	if t.IsZero() {
		return l.S("time.never")
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return l.S("time.seconds_ago", max(0, int(d.Seconds())))
	case d < time.Hour:
		return l.S("time.minutes_ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return l.S("time.hours_ago", int(d.Hours()))
	}
	return l.S("time.days_ago", int(d.Hours()/24))
}

// page is what the layout needs; every page's data embeds it.
type page struct {
	Lang    string
	L       localizer
	Session *session
	OrgName string
	Path    string // this page, for the language switch to come back to
	Nav     string // the active navigation item
	Langs   []langChoice
	Notice  string // a localized confirmation, after a redirect
	Error   string // a localized error for the form on this page
	Detail  string // the domain's own words about the error, if they add anything
	// Gap is next year's missing calendar, shown as a banner to everyone
	// who files, reviews or can load it.
	Gap *gapBanner
	// Unread counts the organisation's unread notifications (inbox.go).
	Unread int
}

// gapBanner is tocsin.CalendarGap as the layout shows it.
type gapBanner struct {
	Year         int
	FirstRefused string
	DaysLeft     int
}

func (p *page) base() *page { return p }

type pageData interface{ base() *page }

// pageFor fills the layout's part of a page for r.
func (s *Server) pageFor(r *http.Request, nav string) page {
	lang := langFrom(r.Context())
	p := page{
		Lang: lang, L: s.localizer(lang), Path: r.URL.RequestURI(), Nav: nav,
		Langs: otherLanguages(lang),
	}
	if sess := sessionFrom(r.Context()); sess != nil {
		p.Session = sess
		p.OrgName = orgName(sess.Org, lang)
		p.Unread = s.unread(r.Context(), sess.Actor)
		if gap, ok := s.Service.CalendarGap(); ok {
			p.Gap = &gapBanner{Year: gap.Year, FirstRefused: gap.FirstRefused.Format(tocsin.DateLayout), DaysLeft: gap.DaysLeft(s.serviceNow())}
		}
	}
	return p
}

func (s *Server) localizer(lang string) localizer {
	return localizer{Lang: lang, c: s.views.catalogs[lang]}
}

// orgName is the organisation's name in the language: the Chinese name
// in zh-CN when it has one.
func orgName(o *tocsin.Organisation, lang string) string {
	if o == nil {
		return ""
	}
	if lang == LangZH && o.NameZH != "" {
		return o.NameZH
	}
	return o.Name
}

// render executes a page into a buffer first, so a template error becomes
// an error page rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) error {
	lang := data.base().Lang
	t := s.views.pages[lang][name]
	if t == nil {
		return fmt.Errorf("webui: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("webui: render %s (%s): %w", name, lang, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", lang)
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
	return nil
}
