package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// FuzzFiling feeds the JSON filing decoder arbitrary bodies, as
// POST /broadcasts reads them. It must never panic; it refuses with a
// client error code and a message, never an internal error; and what it
// accepts survives a JSON round trip unchanged.
func FuzzFiling(f *testing.F) {
	for _, seed := range []string{
		`{"title":"台风红色预警","content":"【广东省气象局】请留在室内。","scope":["440100","440106"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"red","justification":"landfall"}}`,
		`{"title":"t","content":"c","scope":["440000"],"send_at":"2026-10-09T09:00:00+08:00","send_until":"2026-10-09T18:00:00+08:00","exercise":true}`,
		`{"title": "t",`,
		`{"title":"t"} {"title":"u"}`,
		`{"scope":"440100"}`,
		`{"send_at":"next tuesday"}`,
		`{"priority":"high"}`,
		`[]`,
		``,
		`null`,
		`{"emergency":null,"title":"\u0000\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/broadcasts", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, MaxBodyBytes)
		var filing tocsin.Filing
		err := decodeJSON(r, &filing, false)
		if err != nil {
			var te *tocsin.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *tocsin.Error", err)
			}
			if !slices.Contains([]tocsin.Code{tocsin.CodeInvalid, tocsin.CodeValidation, tocsin.CodeTooLarge}, te.Code) {
				t.Fatalf("code %s for a bad body, want a client error: %v", te.Code, err)
			}
			if strings.TrimSpace(te.Message) == "" {
				t.Fatal("refusal without a message")
			}
			if status := StatusOf(te.Code); status < 400 || status >= 500 {
				t.Fatalf("a bad body maps to HTTP %d", status)
			}
			return
		}
		data, err := json.Marshal(filing)
		if err != nil {
			t.Fatalf("an accepted filing does not marshal: %v", err)
		}
		r = httptest.NewRequest(http.MethodPost, "/api/v1/broadcasts", bytes.NewReader(data))
		var again tocsin.Filing
		if err := decodeJSON(r, &again, false); err != nil {
			t.Fatalf("an accepted filing, marshalled, is refused: %v\n%s", err, data)
		}
		if !reflect.DeepEqual(normalised(filing), normalised(again)) {
			t.Fatalf("round trip changed the filing:\n%+v\n%+v", filing, again)
		}
	})
}

// normalised makes filings comparable: times by instant, not location.
func normalised(f tocsin.Filing) tocsin.Filing {
	if f.SendAt != nil {
		t := f.SendAt.UTC()
		f.SendAt = &t
	}
	if f.SendUntil != nil {
		t := f.SendUntil.UTC()
		f.SendUntil = &t
	}
	return f
}
