package cap_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/cap"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// FuzzDecode feeds Decode arbitrary documents. It must never panic; it
// refuses with a client error code, never an internal one; and whatever it
// accepts, written back as CAP and read again, is the same filing.
func FuzzDecode(f *testing.F) {
	for _, b := range kinds() {
		f.Add(mustEncode(f, b))
	}
	f.Add([]byte(foreign))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY a "b">]><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&a;</alert>`))
	f.Add([]byte(`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><a><a><a></a></a></a></alert>`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		filing, err := cap.Decode(bytes.NewReader(data))
		if err != nil {
			var te *tocsin.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *tocsin.Error", err)
			}
			if !slices.Contains([]tocsin.Code{tocsin.CodeInvalid, tocsin.CodeValidation, tocsin.CodeTooLarge}, te.Code) {
				t.Fatalf("code %s for a bad document, want a client error: %v", te.Code, err)
			}
			if strings.TrimSpace(te.Message) == "" {
				t.Fatal("refusal without a message")
			}
			return
		}
		if filing.Content == "" || len(filing.Scope) == 0 || filing.SendAt == nil {
			t.Fatalf("accepted a filing without content, scope or send time: %+v", filing)
		}
		// Write what was read as a broadcast and read it again. A
		// broadcast is never filed after its send time (and CAP's sent is
		// when it was filed: an emergency's send time is the latest named).
		filed := time.Date(2026, 9, 18, 10, 0, 0, 0, tocsin.Shanghai)
		if at := *truncated(filing.SendAt); at.Before(filed) {
			filed = at
		}
		b := &tocsin.Broadcast{
			ID: "BC000001", Status: tocsin.StatusDispatching,
			Title: filing.Title, Headline: filing.Headline, Content: filing.Content, Scope: filing.Scope,
			SendAt: *filing.SendAt, SendUntil: filing.SendUntil, Emergency: filing.Emergency, Exercise: filing.Exercise,
			Department: "gd-met", FiledAt: filed,
		}
		if e := b.Emergency; e != nil {
			c := *e
			c.Justification = "" // not published
			b.Emergency = &c
		}
		out, err := cap.Encode(b, nil, baseURL)
		if err != nil {
			t.Fatalf("Encode of an accepted filing: %v", err)
		}
		again, err := cap.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("Decode(Encode(filing)): %v\n%s", err, out)
		}
		want := tocsin.Filing{Title: b.PublicHeadline(), Content: b.Content, Scope: b.Scope,
			SendAt: truncated(filing.SendAt), SendUntil: truncated(filing.SendUntil),
			Emergency: b.Emergency, Exercise: b.Exercise}
		checkFiling(t, again, want)
	})
}

// truncated drops the fractions of a second CAP cannot carry.
func truncated(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.Truncate(time.Second)
	return &u
}
