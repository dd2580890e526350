package cap_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/cap"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func TestRoundTrip(t *testing.T) {
	for kind, b := range kinds() {
		if b.Closure != nil {
			continue // a Cancel is not a filing; see TestDecodeRefuses
		}
		t.Run(kind, func(t *testing.T) {
			f, err := cap.Decode(bytes.NewReader(mustEncode(t, b)))
			if err != nil {
				t.Fatalf("Decode(Encode(%s)): %v", b.ID, err)
			}
			// The title is internal and not in the CAP: what comes back
			// as the title is the public headline.
			want := tocsin.Filing{
				Title: b.PublicHeadline(), Content: b.Content, Scope: b.Scope,
				SendAt: &b.SendAt, SendUntil: b.SendUntil, Exercise: b.Exercise,
			}
			if e := b.Emergency; e != nil {
				// The justification is for the regulator, not the public
				// CAP, so it does not come back.
				want.Emergency = &tocsin.Emergency{Type: e.Type, Event: e.Event, Level: e.Level}
			}
			checkFiling(t, f, want)
		})
	}
	// Every level comes back, blue included, though blue's CAP urgency
	// (Future) alone would read as an ordinary notice.
	for _, level := range tocsin.WarningLevels {
		b := emergencyBroadcast()
		b.Emergency.Level = level
		f, err := cap.Decode(bytes.NewReader(mustEncode(t, b)))
		if err != nil || f.Emergency == nil || f.Emergency.Level != level {
			t.Errorf("level %s came back as %+v, %v", level, f.Emergency, err)
		}
	}
}

func checkFiling(t *testing.T, got, want tocsin.Filing) {
	t.Helper()
	if got.Title != want.Title || got.Content != want.Content || got.Exercise != want.Exercise {
		t.Errorf("title, content, exercise = %q, %q, %v; want %q, %q, %v",
			got.Title, got.Content, got.Exercise, want.Title, want.Content, want.Exercise)
	}
	if !reflect.DeepEqual(got.Scope, want.Scope) {
		t.Errorf("scope = %q, want %q", got.Scope, want.Scope)
	}
	if !sameTime(got.SendAt, want.SendAt) || !sameTime(got.SendUntil, want.SendUntil) {
		t.Errorf("send_at, send_until = %v, %v; want %v, %v", got.SendAt, got.SendUntil, want.SendAt, want.SendUntil)
	}
	if !reflect.DeepEqual(got.Emergency, want.Emergency) {
		t.Errorf("emergency = %+v, want %+v", got.Emergency, want.Emergency)
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// foreign is a CAP alert as another warning system writes it: no Tocsin
// parameters, an English info before the Chinese one, times in UTC.
const foreign = `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>GD-2026-0918-001</identifier>
  <sender>warning@gd.cma.gov.cn</sender>
  <sent>2026-09-18T02:00:00-00:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <note>Typhoon Haiyan makes landfall within 12 hours</note>
  <info>
    <language>en-US</language>
    <category>Met</category>
    <event>Typhoon</event>
    <urgency>Expected</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <headline>Typhoon orange warning</headline>
    <description>Typhoon Haiyan will make landfall tonight.</description>
    <area><areaDesc>Guangzhou</areaDesc><geocode><valueName>GB/T 2260</valueName><value>440100</value></geocode></area>
  </info>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>台风</event>
    <urgency>Expected</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <effective>2026-09-18T02:05:00Z</effective>
    <expires>2026-09-18T14:00:00+08:00</expires>
    <headline> 台风橙色预警 </headline>
    <description>
      【广东省气象局】台风“海燕”将于今夜登陆。
    </description>
    <instruction>请留在室内。</instruction>
    <area>
      <areaDesc>广州市；深圳市</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value> 440100 </value></geocode>
      <geocode><valueName>postcode</valueName><value>510000</value></geocode>
    </area>
    <area>
      <areaDesc>深圳市</areaDesc>
      <geocode><valueName>GB/T2260</valueName><value>440300</value></geocode>
    </area>
  </info>
</alert>`

func TestDecodeForeign(t *testing.T) {
	f, err := cap.Decode(strings.NewReader(foreign))
	if err != nil {
		t.Fatal(err)
	}
	sendAt := time.Date(2026, 9, 18, 10, 5, 0, 0, tocsin.Shanghai)
	until := time.Date(2026, 9, 18, 14, 0, 0, 0, tocsin.Shanghai)
	checkFiling(t, f, tocsin.Filing{
		Title: "台风橙色预警", Content: "【广东省气象局】台风“海燕”将于今夜登陆。",
		Scope: []string{"440100", "440300"}, SendAt: &sendAt, SendUntil: &until,
		Emergency: &tocsin.Emergency{Type: tocsin.NaturalDisaster, Event: "台风", Level: tocsin.Orange,
			Justification: "Typhoon Haiyan makes landfall within 12 hours"},
	})

	a, err := cap.Parse(strings.NewReader(foreign))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Key(), "cap:warning@gd.cma.gov.cn,GD-2026-0918-001"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
}

// edit returns the foreign alert with old replaced by new, once.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(foreign, old) {
		t.Fatalf("the foreign alert has no %q", old)
	}
	return strings.Replace(foreign, old, new, 1)
}

// chinese is the foreign alert with only its Chinese info.
func chinese(t *testing.T) string {
	t.Helper()
	start := strings.Index(foreign, "<info>")
	end := strings.Index(foreign, "</info>") + len("</info>")
	return foreign[:start] + foreign[end:]
}

func TestDecodeMapping(t *testing.T) {
	zh := chinese(t)
	swap := func(doc, old, new string) string {
		if !strings.Contains(doc, old) {
			t.Fatalf("no %q in the document", old)
		}
		return strings.Replace(doc, old, new, 1)
	}
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, f tocsin.Filing)
	}{
		{"urgency Immediate, severity Extreme is a red emergency", swap(swap(zh, "<urgency>Expected", "<urgency>Immediate"), "Severe", "Extreme"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.NaturalDisaster, tocsin.Red) }},
		{"Moderate is yellow", swap(zh, "Severe", "Moderate"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.NaturalDisaster, tocsin.Yellow) }},
		{"Minor is blue", swap(zh, "Severe", "Minor"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.NaturalDisaster, tocsin.Blue) }},
		{"Geo is a natural disaster", swap(zh, "<category>Met", "<category>Geo"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.NaturalDisaster, tocsin.Orange) }},
		{"Env is a natural disaster", swap(zh, "<category>Met", "<category>Env"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.NaturalDisaster, tocsin.Orange) }},
		{"Transport is an accident", swap(zh, "<category>Met", "<category>Transport"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.Accident, tocsin.Orange) }},
		{"Safety is an accident", swap(zh, "<category>Met", "<category>Safety"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.Accident, tocsin.Orange) }},
		{"Fire is an accident", swap(zh, "<category>Met", "<category>Fire"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.Accident, tocsin.Orange) }},
		{"Health is public health", swap(zh, "<category>Met", "<category>Health"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.PublicHealth, tocsin.Orange) }},
		{"Security is social security", swap(zh, "<category>Met", "<category>Security"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.SocialSecurity, tocsin.Orange) }},
		{"the first category that names a type decides", swap(zh, "<category>Met</category>", "<category>Other</category><category>Health</category><category>Met</category>"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.PublicHealth, tocsin.Orange) }},
		{"urgency Future is an ordinary filing", swap(zh, "<urgency>Expected", "<urgency>Future"),
			func(t *testing.T, f tocsin.Filing) {
				if f.Emergency != nil {
					t.Errorf("emergency = %+v, want none", f.Emergency)
				}
			}},
		{"urgency Unknown with category Other is an ordinary filing", swap(swap(zh, "<urgency>Expected", "<urgency>Unknown"), "<category>Met", "<category>Other"),
			func(t *testing.T, f tocsin.Filing) {
				if f.Emergency != nil {
					t.Errorf("emergency = %+v, want none", f.Emergency)
				}
			}},
		{"Tocsin's parameters decide", swap(zh, "<area>", "<parameter><valueName>tocsin:emergency_type</valueName><value>public_health</value></parameter><parameter><valueName>tocsin:warning_level</valueName><value>blue</value></parameter><area>"),
			func(t *testing.T, f tocsin.Filing) { wantEmergency(t, f, tocsin.PublicHealth, tocsin.Blue) }},
		{"without a note the instruction justifies", swap(zh, "<note>Typhoon Haiyan makes landfall within 12 hours</note>", ""),
			func(t *testing.T, f tocsin.Filing) {
				if f.Emergency == nil || f.Emergency.Justification != "请留在室内。" {
					t.Errorf("emergency = %+v, want the instruction as justification", f.Emergency)
				}
			}},
		{"status Exercise is an exercise", swap(zh, "<status>Actual", "<status>Exercise"),
			func(t *testing.T, f tocsin.Filing) {
				if !f.Exercise {
					t.Error("exercise = false, want true")
				}
			}},
		{"without effective, sent is send_at", swap(zh, "<effective>2026-09-18T02:05:00Z</effective>", ""),
			func(t *testing.T, f tocsin.Filing) {
				if want := time.Date(2026, 9, 18, 10, 0, 0, 0, tocsin.Shanghai); f.SendAt == nil || !f.SendAt.Equal(want) {
					t.Errorf("send_at = %v, want %v", f.SendAt, want)
				}
			}},
		{"without headline, event is the title", swap(zh, "<headline> 台风橙色预警 </headline>", ""),
			func(t *testing.T, f tocsin.Filing) {
				if f.Title != "台风" {
					t.Errorf("title = %q, want the event", f.Title)
				}
			}},
		{"a Chinese info without a region is zh", swap(zh, "zh-CN", "zh"),
			func(t *testing.T, f tocsin.Filing) {
				if f.Title != "台风橙色预警" {
					t.Errorf("title = %q, want the Chinese headline", f.Title)
				}
			}},
		{"English alone is read", strings.Replace(foreign, foreign[strings.LastIndex(foreign, "<info>"):strings.LastIndex(foreign, "</info>")+len("</info>")], "", 1),
			func(t *testing.T, f tocsin.Filing) {
				if f.Title != "Typhoon orange warning" || f.Emergency == nil || f.Emergency.Justification == "" {
					t.Errorf("filing = %+v, want the English info", f)
				}
			}},
		{"no language is en-US", swap(strings.Replace(foreign, foreign[strings.LastIndex(foreign, "<info>"):strings.LastIndex(foreign, "</info>")+len("</info>")], "", 1), "<language>en-US</language>", ""),
			func(t *testing.T, f tocsin.Filing) {
				if f.Title != "Typhoon orange warning" {
					t.Errorf("title = %q, want the English headline", f.Title)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := cap.Decode(strings.NewReader(tt.doc))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tt.check(t, f)
		})
	}
}

func wantEmergency(t *testing.T, f tocsin.Filing, typ tocsin.EmergencyType, level tocsin.WarningLevel) {
	t.Helper()
	if f.Emergency == nil || f.Emergency.Type != typ || f.Emergency.Level != level {
		t.Errorf("emergency = %+v, want %s %s", f.Emergency, typ, level)
	}
}

// withoutDescription is the Chinese alert without its description.
func withoutDescription(t *testing.T) string {
	zh := chinese(t)
	start, end := strings.Index(zh, "<description>"), strings.Index(zh, "</description>")+len("</description>")
	return zh[:start] + zh[end:]
}

func TestDecodeRefuses(t *testing.T) {
	stop := mustEncode(t, stoppedBroadcast())
	tests := []struct {
		name  string
		doc   string
		code  tocsin.Code
		field string
		in    string // the message mentions this
	}{
		{"status Test", edit(t, "<status>Actual", "<status>Test"), tocsin.CodeValidation, "status", "Test"},
		{"status System", edit(t, "<status>Actual", "<status>System"), tocsin.CodeValidation, "status", "System"},
		{"status Draft", edit(t, "<status>Actual", "<status>Draft"), tocsin.CodeValidation, "status", "Draft"},
		{"unknown status", edit(t, "<status>Actual", "<status>Real"), tocsin.CodeValidation, "status", "Real"},
		{"msgType Update", edit(t, "<msgType>Alert", "<msgType>Update"), tocsin.CodeValidation, "msgType", "/update"},
		{"msgType Cancel", string(stop), tocsin.CodeValidation, "msgType", "Cancel"},
		{"msgType Ack", edit(t, "<msgType>Alert", "<msgType>Ack"), tocsin.CodeValidation, "msgType", "Ack"},
		{"scope Restricted", edit(t, "<scope>Public", "<scope>Restricted"), tocsin.CodeValidation, "scope", "Restricted"},
		{"no identifier", edit(t, "<identifier>GD-2026-0918-001</identifier>", ""), tocsin.CodeValidation, "identifier", "identifier"},
		{"no sent", edit(t, "<sent>2026-09-18T02:00:00-00:00</sent>", ""), tocsin.CodeValidation, "sent", "sent"},
		{"no info", foreign[:strings.Index(foreign, "<info>")] + "</alert>", tocsin.CodeValidation, "info", "info"},
		{"only French", strings.ReplaceAll(strings.ReplaceAll(foreign, "zh-CN", "fr-FR"), "en-US", "fr-CA"), tocsin.CodeValidation, "info.language", "fr-FR"},
		{"no description", withoutDescription(t), tocsin.CodeValidation, "content", "description"},
		{"blank description", edit(t, "\n      【广东省气象局】台风“海燕”将于今夜登陆。\n    ", "  "), tocsin.CodeValidation, "content", "description"},
		{"no GB/T 2260 geocode", strings.NewReplacer("GB/T 2260", "UGC", "GB/T2260", "FIPS").Replace(foreign), tocsin.CodeValidation, "scope", "GB/T 2260"},
		{"bad effective", edit(t, "2026-09-18T02:05:00Z", "tonight"), tocsin.CodeValidation, "effective", "tonight"},
		{"effective before 1970", edit(t, "2026-09-18T02:05:00Z", "0000-01-01T00:00:00Z"), tocsin.CodeValidation, "effective", "between 1970 and 9999"},
		{"bad expires", edit(t, "<expires>2026-09-18T14:00:00+08:00", "<expires>2026-09-18 14:00"), tocsin.CodeValidation, "expires", "expires"},
		{"emergency without a type", strings.ReplaceAll(chinese(t), "<category>Met", "<category>Other"), tocsin.CodeValidation, "emergency.type", "Other"},
		{"emergency without a level", strings.ReplaceAll(chinese(t), "<severity>Severe", "<severity>Unknown"), tocsin.CodeValidation, "emergency.level", "Unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cap.Decode(strings.NewReader(tt.doc))
			wantErr(t, err, tt.code, tt.in)
			if tt.field != "" {
				if got := tocsin.ErrorDetails(err)["field"]; got != tt.field {
					t.Errorf("field = %v, want %q", got, tt.field)
				}
			}
		})
	}
}

func wantErr(t *testing.T, err error, code tocsin.Code, in string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	var te *tocsin.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not a *tocsin.Error", err)
	}
	if te.Code != code {
		t.Errorf("code = %s, want %s (%v)", te.Code, code, err)
	}
	if !strings.Contains(tocsin.ErrorMessage(err), in) {
		t.Errorf("message %q does not mention %q", tocsin.ErrorMessage(err), in)
	}
}

// endless is a document that never ends: <alert><a><a><a>...
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	const head = `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">`
	n := 0
	for n < len(p) {
		if e.n < len(head) {
			p[n] = head[e.n]
		} else {
			p[n] = "<a>"[(e.n-len(head))%3]
		}
		n++
		e.n++
	}
	return n, nil
}

func TestDecodeHostile(t *testing.T) {
	const ns = `xmlns="urn:oasis:names:tc:emergency:cap:1.2"`
	laughs := `<?xml version="1.0"?>
<!DOCTYPE alert [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<alert ` + ns + `><identifier>&lol3;</identifier></alert>`
	xxe := `<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert ` + ns + `><identifier>&xxe;</identifier></alert>`
	external := `<?xml version="1.0"?><!DOCTYPE alert SYSTEM "http://127.0.0.1:1/cap.dtd"><alert ` + ns + `/>`
	deep := `<alert ` + ns + `>` + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + `</alert>`
	huge := `<alert ` + ns + `><note>` + strings.Repeat("x", cap.MaxDocumentBytes) + `</note></alert>`
	tests := []struct {
		name string
		r    io.Reader
		code tocsin.Code
		in   string
	}{
		{"billion laughs", strings.NewReader(laughs), tocsin.CodeInvalid, "DOCTYPE"},
		{"external entity", strings.NewReader(xxe), tocsin.CodeInvalid, "DOCTYPE"},
		{"external DTD", strings.NewReader(external), tocsin.CodeInvalid, "DOCTYPE"},
		{"undeclared entity", strings.NewReader(edit(t, "<note>Typhoon", "<note>&xxe;Typhoon")), tocsin.CodeInvalid, "well-formed"},
		{"deep nesting", strings.NewReader(deep), tocsin.CodeInvalid, "deep"},
		{"huge", strings.NewReader(huge), tocsin.CodeTooLarge, "256 KiB"},
		{"endless", &endless{}, tocsin.CodeTooLarge, "256 KiB"},
		{"malformed", strings.NewReader(`<alert ` + ns + `><identifier>x</alert>`), tocsin.CodeInvalid, "well-formed"},
		{"truncated", strings.NewReader(foreign[:200]), tocsin.CodeInvalid, "well-formed"},
		{"empty", strings.NewReader(""), tocsin.CodeInvalid, "empty"},
		{"not XML", strings.NewReader(`{"title": "json"}`), tocsin.CodeInvalid, ""},
		{"Latin-1", strings.NewReader(`<?xml version="1.0" encoding="ISO-8859-1"?><alert ` + ns + `/>`), tocsin.CodeInvalid, "UTF-8"},
		{"two roots", strings.NewReader(foreign + foreign[strings.Index(foreign, "<alert"):]), tocsin.CodeInvalid, "root"},
		{"text after the alert", strings.NewReader(foreign + "trailing"), tocsin.CodeInvalid, "outside"},
		{"CAP 1.1", strings.NewReader(strings.Replace(foreign, "cap:1.2", "cap:1.1", 1)), tocsin.CodeInvalid, "CAP 1.2"},
		{"no namespace", strings.NewReader(strings.Replace(foreign, ` xmlns="urn:oasis:names:tc:emergency:cap:1.2"`, "", 1)), tocsin.CodeInvalid, "namespace"},
		{"another root", strings.NewReader(`<filing/>`), tocsin.CodeInvalid, "namespace"},
		{"another namespace", strings.NewReader(`<feed xmlns="http://www.w3.org/2005/Atom"/>`), tocsin.CodeInvalid, "not a CAP 1.2 alert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cap.Decode(tt.r)
			wantErr(t, err, tt.code, tt.in)
		})
	}
}

// A document just under the limit is read, and then judged on its merits.
func TestCorrection(t *testing.T) {
	update := edit(t, "<msgType>Alert", "<msgType>Update")
	a, err := cap.Parse(strings.NewReader(update))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Filing(); tocsin.ErrorCode(err) != tocsin.CodeValidation {
		t.Errorf("Filing of an Update: %v, want a refusal", err)
	}
	if f, err := a.Correction(); err != nil || f.Title != "台风橙色预警" {
		t.Errorf("Correction of an Update = %q, %v", f.Title, err)
	}
	a, err = cap.Parse(strings.NewReader(edit(t, "<msgType>Alert", "<msgType>Cancel")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Correction(); tocsin.ErrorCode(err) != tocsin.CodeValidation {
		t.Errorf("Correction of a Cancel: %v, want a refusal", err)
	}
}

func TestNotCAP(t *testing.T) {
	for _, doc := range []string{`<filing/>`, `<feed xmlns="http://www.w3.org/2005/Atom"/>`, strings.Replace(foreign, "cap:1.2", "cap:1.1", 1)} {
		if _, err := cap.Parse(strings.NewReader(doc)); !errors.Is(err, cap.ErrNotCAP) {
			t.Errorf("Parse(%.40q) = %v, want ErrNotCAP", doc, err)
		}
	}
	for _, doc := range []string{`<alert`, `<!DOCTYPE x><filing/>`, foreign} {
		if _, err := cap.Parse(strings.NewReader(doc)); errors.Is(err, cap.ErrNotCAP) {
			t.Errorf("Parse(%.40q) = %v, want no ErrNotCAP", doc, err)
		}
	}
}

func TestDecodeUnderLimit(t *testing.T) {
	pad := strings.Repeat("x", cap.MaxDocumentBytes-len(foreign)-len("<!---->"))
	doc := strings.Replace(foreign, "<note>", "<!--"+pad+"--><note>", 1)
	if len(doc) != cap.MaxDocumentBytes {
		t.Fatalf("document is %d bytes, want %d", len(doc), cap.MaxDocumentBytes)
	}
	if _, err := cap.Decode(strings.NewReader(doc)); err != nil {
		t.Errorf("a %d-byte alert was refused: %v", len(doc), err)
	}
}
