package httpapi_test

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

const capCT = "application/cap+xml"

// capAlert is what the tests read of a served CAP alert.
type capAlert struct {
	XMLName    xml.Name `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier string   `xml:"identifier"`
	Sender     string   `xml:"sender"`
	Status     string   `xml:"status"`
	MsgType    string   `xml:"msgType"`
	References string   `xml:"references"`
	Info       []struct {
		Headline string `xml:"headline"`
		Severity string `xml:"severity"`
		Area     []struct {
			AreaDesc string   `xml:"areaDesc"`
			Geocodes []string `xml:"geocode>value"`
		} `xml:"area"`
	} `xml:"info"`
}

// getCAP fetches a broadcast's CAP as org ("" for no token) and checks it
// is served as CAP, parses, and is valid against the OASIS schema.
func (api *testAPI) getCAP(t *testing.T, org, id string) capAlert {
	t.Helper()
	res := api.get(t, org, broadcasts+"/"+id+"/cap")
	if res.Status != http.StatusOK {
		t.Fatalf("GET cap of %s as %q: %s", id, org, res)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, capCT) {
		t.Errorf("Content-Type = %q, want %s", ct, capCT)
	}
	var a capAlert
	if err := xml.Unmarshal(res.Body, &a); err != nil {
		t.Fatalf("the CAP of %s does not parse: %v\n%s", id, err, res.Body)
	}
	validateCAP(t, res.Body)
	return a
}

// validateCAP checks doc against the OASIS CAP 1.2 schema with xmllint,
// when it is installed (internal/cap's tests insist on it in CI).
func validateCAP(t *testing.T, doc []byte) {
	t.Helper()
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		return
	}
	file := filepath.Join(t.TempDir(), "alert.xml")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", "../cap/testdata/CAP-v1.2.xsd", file).CombinedOutput()
	if err != nil {
		t.Errorf("served CAP is not valid CAP 1.2: %s\n%s", out, doc)
	}
}

func TestBroadcastCAP(t *testing.T) {
	api := newTestAPI(t)
	em := api.file(t, "gd-met", emergency("440100", "440106"))
	ord := api.file(t, "gd-met", ordinary(onTime, "440100"))
	drill := with(emergency("440100"), "exercise", true)
	ex := api.file(t, "gd-met", drill)
	stopped := api.file(t, "gd-met", emergency("440100"))
	wantBroadcast(t, api.post(t, "gd-cab", broadcasts+"/"+stopped.ID+"/cancel", map[string]any{"reason": "wrong district"}), http.StatusOK, tocsin.StatusCancelled)

	t.Run("public emergency without a token", func(t *testing.T) {
		a := api.getCAP(t, "", em.ID)
		if a.Identifier != "tocsin-"+em.ID || a.Status != "Actual" || a.MsgType != "Alert" || !strings.HasPrefix(a.Sender, "gd-met@") {
			t.Errorf("alert = %+v", a)
		}
		if len(a.Info) != 1 || a.Info[0].Severity != "Extreme" || a.Info[0].Area[0].AreaDesc != "广东省 广州市、广东省 广州市 天河区" ||
			strings.Join(a.Info[0].Area[0].Geocodes, ",") != "440100,440106" {
			t.Errorf("info = %+v", a.Info)
		}
		res := api.get(t, "", broadcasts+"/"+em.ID+"/cap")
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "public") {
			t.Errorf("Cache-Control = %q, want public", cc)
		}
	})
	t.Run("stop", func(t *testing.T) {
		a := api.getCAP(t, "", stopped.ID)
		if a.MsgType != "Cancel" || !strings.Contains(a.References, "tocsin-"+stopped.ID) || len(a.Info) != 0 {
			t.Errorf("alert = %+v", a)
		}
	})
	t.Run("ordinary, with the filer's token", func(t *testing.T) {
		a := api.getCAP(t, "gd-met", ord.ID)
		if a.MsgType != "Alert" || a.Info[0].Severity != "Unknown" {
			t.Errorf("alert = %+v", a)
		}
		if res := api.get(t, "gd-met", broadcasts+"/"+ord.ID+"/cap"); !strings.Contains(res.Header.Get("Cache-Control"), "no-store") {
			t.Errorf("Cache-Control = %q, want no-store", res.Header.Get("Cache-Control"))
		}
		api.getCAP(t, "gd-cab", ord.ID)
		api.getCAP(t, "miit", ord.ID)
	})
	t.Run("exercise, with a token", func(t *testing.T) {
		if a := api.getCAP(t, "gd-met", ex.ID); a.Status != "Exercise" {
			t.Errorf("status = %q, want Exercise", a.Status)
		}
	})
	t.Run("correction", func(t *testing.T) {
		res := api.post(t, "gd-met", broadcasts+"/"+em.ID+"/update", with(emergency("440100"), "title", "台风红色预警（更正）"))
		up := wantBroadcast(t, res, http.StatusCreated, tocsin.StatusDispatching)
		a := api.getCAP(t, "", up.ID)
		if a.MsgType != "Update" || !strings.HasPrefix(a.References, a.Sender+",tocsin-"+em.ID+",") {
			t.Errorf("alert = %+v", a)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct {
			name, org, id string
			status        int
			code          tocsin.Code
		}{
			{"pending without a token", "", ord.ID, http.StatusUnauthorized, tocsin.CodeUnauthorized},
			{"exercise without a token", "", ex.ID, http.StatusUnauthorized, tocsin.CodeUnauthorized},
			{"another province's regulator", "gx-cab", ord.ID, http.StatusForbidden, tocsin.CodeForbidden},
			{"another department", "gx-health", ord.ID, http.StatusForbidden, tocsin.CodeForbidden},
			{"no such broadcast", "", "BC999999", http.StatusNotFound, tocsin.CodeNotFound},
		} {
			t.Run(tt.name, func(t *testing.T) {
				wantError(t, api.get(t, tt.org, broadcasts+"/"+tt.id+"/cap"), tt.status, tt.code)
			})
		}
		// A token that is presented is checked, even for a public alert.
		res := api.do(t, request{Path: broadcasts + "/" + em.ID + "/cap", Auth: "Bearer not-a-jwt"})
		wantError(t, res, http.StatusUnauthorized, tocsin.CodeUnauthorized)
	})
}

func TestAlertFeed(t *testing.T) {
	api := newTestAPI(t)
	em := api.file(t, "gd-met", emergency("440100"))
	ord := api.file(t, "gd-met", ordinary(onTime, "440100"))
	ex := api.file(t, "gd-met", with(emergency("440100"), "exercise", true))
	stopped := api.file(t, "gx-health", with(emergency("450100"), "content", "【广西卫健委】此条将被停止发送。"))
	wantBroadcast(t, api.post(t, "gx-cab", broadcasts+"/"+stopped.ID+"/cancel", map[string]any{"reason": "wrong"}), http.StatusOK, tocsin.StatusCancelled)

	res := api.get(t, "", "/feeds/alerts.atom")
	if res.Status != http.StatusOK {
		t.Fatalf("GET /feeds/alerts.atom: %s", res)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/atom+xml") {
		t.Errorf("Content-Type = %q, want application/atom+xml", ct)
	}
	var feed struct {
		XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
		ID      string   `xml:"id"`
		Updated string   `xml:"updated"`
		Entries []struct {
			ID    string `xml:"id"`
			Title string `xml:"title"`
			Link  []struct {
				Rel  string `xml:"rel,attr"`
				Type string `xml:"type,attr"`
				Href string `xml:"href,attr"`
			} `xml:"link"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal(res.Body, &feed); err != nil {
		t.Fatalf("the feed is not Atom: %v\n%s", err, res.Body)
	}
	if feed.ID != api.URL+"/feeds/alerts.atom" {
		t.Errorf("feed id = %q", feed.ID)
	}
	var got []string
	for _, e := range feed.Entries {
		if len(e.Link) != 1 || e.Link[0].Type != capCT || e.Link[0].Rel != "alternate" {
			t.Fatalf("entry %s links %+v, want one alternate CAP link", e.ID, e.Link)
		}
		u, err := url.Parse(e.Link[0].Href)
		if err != nil {
			t.Fatal(err)
		}
		a := api.getCAP(t, "", strings.TrimSuffix(strings.TrimPrefix(u.Path, broadcasts+"/"), "/cap"))
		got = append(got, strings.TrimSuffix(strings.TrimPrefix(a.Identifier, "tocsin-"), "-cancel"))
	}
	// Newest change first: the stop, then the emergency; never the
	// exercise or what is not released.
	if want := stopped.ID + "," + em.ID; strings.Join(got, ",") != want {
		t.Errorf("feed lists %v, want %s (not %s or %s)", got, want, ord.ID, ex.ID)
	}
	if strings.Contains(string(res.Body), stopped.Content) {
		t.Error("the feed repeats a stopped message")
	}
}

// capFiling is a CAP alert from a provincial warning system: an orange
// typhoon warning for Guangzhou, already in effect.
const capFiling = `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>GD-2026-0918-001</identifier>
  <sender>warning@gd.cma.gov.cn</sender>
  <sent>2026-09-18T09:58:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <note>Typhoon Haiyan makes landfall within 12 hours</note>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>台风</event>
    <urgency>Expected</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <headline>台风橙色预警</headline>
    <description>【广东省气象局】台风“海燕”将于今夜登陆，请做好防御。</description>
    <area>
      <areaDesc>广州市</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value>440100</value></geocode>
    </area>
  </info>
</alert>`

func TestFileCAP(t *testing.T) {
	api := newTestAPI(t)
	postCAP := func(t *testing.T, org, path, ct, body string, header map[string]string) response {
		t.Helper()
		h := map[string]string{"Content-Type": ct}
		for k, v := range header {
			h[k] = v
		}
		return api.do(t, request{Method: http.MethodPost, Path: path, Org: org, Body: body, Header: h})
	}

	res := postCAP(t, "gd-met", broadcasts, capCT, capFiling, nil)
	b := wantBroadcast(t, res, http.StatusCreated, tocsin.StatusDispatching)
	if b.Title != "台风橙色预警" || b.Emergency == nil || b.Emergency.Type != tocsin.NaturalDisaster ||
		b.Emergency.Level != tocsin.Orange || b.Emergency.Event != "台风" ||
		b.Emergency.Justification != "Typhoon Haiyan makes landfall within 12 hours" ||
		strings.Join(b.Scope, ",") != "440100" || !b.SendAt.Equal(testNow) {
		t.Errorf("filed %+v, emergency %+v", b.Broadcast, b.Emergency)
	}

	t.Run("a redelivered alert is filed once", func(t *testing.T) {
		again := postCAP(t, "gd-met", broadcasts, "application/cap+xml; charset=utf-8", capFiling, nil)
		if got := wantBroadcast(t, again, http.StatusCreated, tocsin.StatusDispatching); got.ID != b.ID || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("redelivery filed %s (replayed %q), want %s replayed", got.ID, again.Header.Get("Idempotent-Replayed"), b.ID)
		}
	})
	t.Run("application/xml with the CAP namespace, and an Idempotency-Key", func(t *testing.T) {
		doc := strings.Replace(capFiling, "GD-2026-0918-001", "GD-2026-0918-002", 1)
		first := wantBroadcast(t, postCAP(t, "gd-met", broadcasts, "application/xml", doc, map[string]string{"Idempotency-Key": "k1"}), http.StatusCreated, tocsin.StatusDispatching)
		again := postCAP(t, "gd-met", broadcasts, "text/xml", doc, map[string]string{"Idempotency-Key": "k1"})
		if got := wantBroadcast(t, again, http.StatusCreated, tocsin.StatusDispatching); got.ID != first.ID {
			t.Errorf("retry with the same key filed %s, want %s", got.ID, first.ID)
		}
		other := strings.Replace(doc, "台风橙色预警", "台风红色预警", 1)
		wantError(t, postCAP(t, "gd-met", broadcasts, capCT, other, map[string]string{"Idempotency-Key": "k1"}), http.StatusUnprocessableEntity, tocsin.CodeIdempotencyReuse)
	})
	t.Run("an exercise", func(t *testing.T) {
		doc := strings.NewReplacer("GD-2026-0918-001", "GD-DRILL-1", "<status>Actual", "<status>Exercise").Replace(capFiling)
		if got := wantBroadcast(t, postCAP(t, "gd-met", broadcasts, capCT, doc, nil), http.StatusCreated, tocsin.StatusDispatching); !got.Exercise {
			t.Error("exercise = false, want true")
		}
	})
	t.Run("an ordinary notice goes to review", func(t *testing.T) {
		doc := strings.NewReplacer("GD-2026-0918-001", "GD-NOTICE-1", "<urgency>Expected", "<urgency>Future",
			"<certainty>Likely</certainty>", "<certainty>Likely</certainty><effective>"+onTime+"</effective>").Replace(capFiling)
		got := wantBroadcast(t, postCAP(t, "gd-met", broadcasts, capCT, doc, nil), http.StatusCreated, tocsin.StatusPendingReview)
		if got.Emergency != nil || got.SendAt.Format("2006-01-02T15:04:05Z07:00") != onTime {
			t.Errorf("filed %+v", got.Broadcast)
		}
	})
	t.Run("a correction", func(t *testing.T) {
		doc := strings.NewReplacer("GD-2026-0918-001", "GD-2026-0918-001-U", "<msgType>Alert", "<msgType>Update").Replace(capFiling)
		wantError(t, postCAP(t, "gd-met", broadcasts, capCT, doc, nil), http.StatusUnprocessableEntity, tocsin.CodeValidation)
		up := wantBroadcast(t, postCAP(t, "gd-met", broadcasts+"/"+b.ID+"/update", capCT, doc, nil), http.StatusCreated, tocsin.StatusDispatching)
		if up.References != b.ID {
			t.Errorf("references = %q, want %s", up.References, b.ID)
		}
	})

	huge := strings.Replace(capFiling, "<note>", "<note>"+strings.Repeat("x", 300<<10), 1)
	laughs := strings.Replace(capFiling, "<alert ", `<!DOCTYPE alert [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><alert `, 1)
	for _, tt := range []struct {
		name, org, ct, body string
		status              int
		code                tocsin.Code
		in                  string
	}{
		{"entity declarations", "gd-met", capCT, laughs, http.StatusBadRequest, tocsin.CodeInvalid, "DOCTYPE"},
		{"over 256 KiB", "gd-met", capCT, huge, http.StatusRequestEntityTooLarge, tocsin.CodeTooLarge, "256 KiB"},
		{"malformed", "gd-met", capCT, capFiling[:300], http.StatusBadRequest, tocsin.CodeInvalid, "well-formed"},
		{"CAP media type, not CAP", "gd-met", capCT, `<filing/>`, http.StatusBadRequest, tocsin.CodeInvalid, "namespace"},
		{"XML that is not CAP", "gd-met", "application/xml", `<filing xmlns="urn:example"/>`, http.StatusUnsupportedMediaType, tocsin.CodeUnsupportedMedia, "CAP 1.2"},
		{"status Test", "gd-met", capCT, strings.Replace(capFiling, "<status>Actual", "<status>Test", 1), http.StatusUnprocessableEntity, tocsin.CodeValidation, "Test"},
		{"no GB/T 2260 geocode", "gd-met", capCT, strings.Replace(capFiling, "GB/T 2260", "UGC", 1), http.StatusUnprocessableEntity, tocsin.CodeValidation, "GB/T 2260"},
		{"outside the jurisdiction", "gx-health", capCT, capFiling, http.StatusForbidden, tocsin.CodeForbidden, "440100"},
		{"a prefecture department", "gz-em", capCT, capFiling, http.StatusForbidden, tocsin.CodeForbidden, "Article 17"},
		{"unknown region", "gd-met", capCT, strings.NewReplacer("<value>440100", "<value>449999", "GD-2026-0918-001", "GD-X").Replace(capFiling), http.StatusUnprocessableEntity, tocsin.CodeUnknownRegion, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := wantError(t, postCAP(t, tt.org, broadcasts, tt.ct, tt.body, nil), tt.status, tt.code)
			if !strings.Contains(e.Message, tt.in) {
				t.Errorf("message %q does not mention %q", e.Message, tt.in)
			}
		})
	}
}
