package cap

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// AtomMediaType is the media type of the alert feed.
const AtomMediaType = "application/atom+xml"

// FeedPath is where the alert feed is served, at the server's root.
const FeedPath = "/feeds/alerts.atom"

// MaxFeedEntries is how many alerts the feed lists.
const MaxFeedEntries = 50

// Public reports whether b's CAP is public: anyone may read it without a
// token, and it is listed in the feed (tocsin.Broadcast.Public).
func Public(b *tocsin.Broadcast) bool { return b.Public() }

// CAPPath is the API path of b's CAP alert.
func CAPPath(id string) string { return "/api/v1/broadcasts/" + url.PathEscape(id) + "/cap" }

// updated is when b's public alert last changed: its stop, else its release.
func updated(b *tocsin.Broadcast) time.Time {
	if b.Closure != nil {
		return b.Closure.At
	}
	if b.ReleasedAt != nil {
		return *b.ReleasedAt
	}
	return b.FiledAt
}

type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Lang    string      `xml:"xml:lang,attr"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Link    []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomEntry struct {
	ID        string      `xml:"id"`
	Title     string      `xml:"title"`
	Updated   string      `xml:"updated"`
	Published string      `xml:"published,omitempty"`
	Author    *atomPerson `xml:"author,omitempty"`
	Link      []atomLink  `xml:"link"`
	Summary   string      `xml:"summary"`
}

// AtomFeed writes an Atom 1.0 feed of the public alerts among bs (see
// Public), the most recently changed first, at most MaxFeedEntries, each
// linking to its CAP alert. baseURL must be the absolute URL the server is
// reached at; now is the feed's updated time when it lists nothing.
func AtomFeed(bs []*tocsin.Broadcast, baseURL string, now time.Time) ([]byte, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("cap: atom feed: base URL %q is not absolute", baseURL)
	}
	base := strings.TrimRight(baseURL, "/")
	var public []*tocsin.Broadcast
	for _, b := range bs {
		if Public(b) {
			public = append(public, b)
		}
	}
	slices.SortStableFunc(public, func(x, y *tocsin.Broadcast) int {
		if c := updated(y).Compare(updated(x)); c != 0 {
			return c
		}
		return cmp.Compare(y.ID, x.ID)
	})
	public = public[:min(len(public), MaxFeedEntries)]

	f := atomFeed{
		Lang:    Language,
		ID:      base + FeedPath,
		Title:   "Tocsin 公益短信预警 (public alerts)",
		Updated: formatTime(now),
		Author:  atomPerson{Name: "Tocsin"},
		Link: []atomLink{
			{Rel: "self", Type: AtomMediaType, Href: base + FeedPath},
		},
	}
	if len(public) > 0 {
		f.Updated = formatTime(updated(public[0]))
	}
	for _, b := range public {
		capURL := base + CAPPath(b.ID)
		e := atomEntry{
			ID:        capURL,
			Title:     b.PublicHeadline(), // never the internal title
			Updated:   formatTime(updated(b)),
			Published: formatTime(*b.ReleasedAt),
			Link:      []atomLink{{Rel: "alternate", Type: MediaType, Href: capURL}},
			Summary:   b.Content,
		}
		if b.Agency != "" {
			e.Author = &atomPerson{Name: b.Agency}
		}
		if b.Closure != nil {
			// Article 28: a stopped message is not repeated, not even here.
			e.Title = "已停止发送 (stopped): " + b.ID
			e.Summary = cancelNote
		}
		f.Entries = append(f.Entries, e)
	}

	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, errors.Join(errors.New("cap: atom feed"), err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
