package cap_test

import (
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/cap"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// atomFeed is an independent reading of an Atom 1.0 feed (RFC 4287).
type atomFeed struct {
	XMLName xml.Name   `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string     `xml:"http://www.w3.org/2005/Atom id"`
	Title   string     `xml:"http://www.w3.org/2005/Atom title"`
	Updated string     `xml:"http://www.w3.org/2005/Atom updated"`
	Authors []string   `xml:"http://www.w3.org/2005/Atom author>name"`
	Links   []atomLink `xml:"http://www.w3.org/2005/Atom link"`
	Entries []struct {
		ID        string     `xml:"http://www.w3.org/2005/Atom id"`
		Title     string     `xml:"http://www.w3.org/2005/Atom title"`
		Updated   string     `xml:"http://www.w3.org/2005/Atom updated"`
		Published string     `xml:"http://www.w3.org/2005/Atom published"`
		Summary   string     `xml:"http://www.w3.org/2005/Atom summary"`
		Links     []atomLink `xml:"http://www.w3.org/2005/Atom link"`
	} `xml:"http://www.w3.org/2005/Atom entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr"`
	Href string `xml:"href,attr"`
}

func readFeed(t *testing.T, data []byte) atomFeed {
	t.Helper()
	var f atomFeed
	if err := xml.Unmarshal(data, &f); err != nil {
		t.Fatalf("the feed does not parse as Atom: %v\n%s", err, data)
	}
	return f
}

// checkAtom checks what RFC 4287 requires of a feed and its entries.
func checkAtom(t *testing.T, f atomFeed) {
	t.Helper()
	rfc3339 := func(what, s string) {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Errorf("%s %q is not an RFC 3339 date: %v", what, s, err)
		}
	}
	if f.ID == "" || f.Title == "" || len(f.Authors) == 0 {
		t.Errorf("feed id, title, author = %q, %q, %q; all are required", f.ID, f.Title, f.Authors)
	}
	rfc3339("feed updated", f.Updated)
	if !slices.ContainsFunc(f.Links, func(l atomLink) bool { return l.Rel == "self" && strings.HasPrefix(l.Href, "http") }) {
		t.Errorf("feed links %v have no absolute self link", f.Links)
	}
	for i, e := range f.Entries {
		if e.ID == "" || e.Title == "" {
			t.Errorf("entry %d: id, title = %q, %q; both are required", i, e.ID, e.Title)
		}
		rfc3339(fmt.Sprintf("entry %d updated", i), e.Updated)
		if !slices.ContainsFunc(e.Links, func(l atomLink) bool {
			return l.Rel == "alternate" && l.Type == cap.MediaType && l.Href == e.ID
		}) {
			t.Errorf("entry %d links %v have no alternate link to its CAP", i, e.Links)
		}
	}
}

func TestAtomFeed(t *testing.T) {
	all := kinds()
	later := emergencyBroadcast()
	later.ID, later.Status, later.Title, later.Headline = "BC000006", tocsin.StatusCompleted, "内部标题", "暴雨橙色预警"
	rel := released.Add(time.Hour)
	later.ReleasedAt = &rel
	broadcasts := []*tocsin.Broadcast{all["emergency"], all["ordinary"], all["stop"], all["exercise"], all["withdrawn"], later}

	out, err := cap.AtomFeed(broadcasts, baseURL+"/", filed.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	f := readFeed(t, out)
	checkAtom(t, f)
	var ids []string
	for _, e := range f.Entries {
		ids = append(ids, e.ID)
	}
	want := []string{ // newest change first; no exercise, nothing unreleased
		baseURL + "/api/v1/broadcasts/BC000006/cap",
		baseURL + "/api/v1/broadcasts/BC000003/cap",
		baseURL + "/api/v1/broadcasts/BC000001/cap",
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("entries %q, want %q", ids, want)
	}
	if f.ID != baseURL+"/feeds/alerts.atom" || f.Updated != "2026-09-18T11:00:02+08:00" {
		t.Errorf("feed id, updated = %q, %q", f.ID, f.Updated)
	}
	first := f.Entries[0]
	if first.Title != "暴雨橙色预警" || first.Summary != later.Content || first.Published != "2026-09-18T11:00:02+08:00" {
		t.Errorf("entry = %+v", first)
	}
	if stop := f.Entries[1]; strings.Contains(stop.Title+stop.Summary, all["stop"].Title) ||
		strings.Contains(stop.Summary, all["stop"].Content) || stop.Updated != "2026-09-18T10:20:00+08:00" {
		t.Errorf("the stopped alert's entry %+v repeats the message or has the wrong time", stop)
	}
	if _, ok := lint(t, out); !ok {
		t.Errorf("xmllint finds the feed not well-formed:\n%s", out)
	}
}

func TestAtomFeedEmptyAndLimits(t *testing.T) {
	now := filed.Add(time.Hour)
	out, err := cap.AtomFeed(nil, baseURL, now)
	if err != nil {
		t.Fatal(err)
	}
	f := readFeed(t, out)
	checkAtom(t, f)
	if len(f.Entries) != 0 || f.Updated != "2026-09-18T11:00:00+08:00" {
		t.Errorf("empty feed: %d entries, updated %q", len(f.Entries), f.Updated)
	}

	var many []*tocsin.Broadcast
	for i := range cap.MaxFeedEntries + 10 {
		b := emergencyBroadcast()
		b.ID = fmt.Sprintf("BC%06d", i+1)
		many = append(many, b)
	}
	out, err = cap.AtomFeed(many, baseURL, now)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(readFeed(t, out).Entries); n != cap.MaxFeedEntries {
		t.Errorf("%d entries, want %d", n, cap.MaxFeedEntries)
	}

	for _, bad := range []string{"", "/relative", "tocsin.example"} {
		if _, err := cap.AtomFeed(nil, bad, now); err == nil {
			t.Errorf("AtomFeed with base URL %q succeeded; an Atom id must be absolute", bad)
		}
	}
}
