package tocsin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// hugeText is the review's 900 KB reason.
var hugeText = strings.Repeat("理由", 450*1024/3)

func TestBlank(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"", true},
		{" \n\t\u3000", true},
		{"\u200b", true},
		{"\u200b\u200c\u200d\u2060\ufeff", true},
		{" \u00ad\u200e\u200f\u3164 ", true},
		{"台风", false},
		{"\u200b台", false},
		{"👨\u200d👩\u200d👧", false},
	} {
		if got := tocsin.Blank(tt.s); got != tt.want {
			t.Errorf("Blank(%+q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// Every free-text field is bounded and clean, in the domain: a refusal is
// validation_failed naming the field, and changes nothing.
func TestFreeTextIsBoundedAndClean(t *testing.T) {
	ctx := context.Background()
	withFiling := func(mod func(f *tocsin.Filing)) func(e *env) error {
		return func(e *env) error {
			f := emergency("Typhoon", "440100")
			mod(&f)
			_, _, err := e.svc.File(ctx, actor(t, "gd-met"), f, "")
			return err
		}
	}
	// pending and released are filed by each case's own env.
	pending := func(e *env) string { return e.mustFile(t, "gd-met", ordinary("pending", "440100")).ID }
	released := func(e *env) string { return e.mustFile(t, "gd-met", emergency("released", "440100")).ID }
	reported := func(e *env) string {
		id := released(e)
		if _, err := e.svc.FilePostHoc(ctx, actor(t, "gd-met"), id, "landfall at 21:40"); err != nil {
			t.Fatal(err)
		}
		return id
	}
	tests := []struct {
		name  string
		field string
		do    func(e *env) error
		code  tocsin.Code
	}{
		{"title too long", "title", withFiling(func(f *tocsin.Filing) { f.Title = strings.Repeat("题", tocsin.MaxTitleChars+1) }), tocsin.CodeValidation},
		{"title with NUL", "title", withFiling(func(f *tocsin.Filing) { f.Title = "台风\x00预警" }), tocsin.CodeValidation},
		{"title with a newline", "title", withFiling(func(f *tocsin.Filing) { f.Title = "台风\n预警" }), tocsin.CodeValidation},
		{"title with a tab", "title", withFiling(func(f *tocsin.Filing) { f.Title = "台风\t预警" }), tocsin.CodeValidation},
		{"title with a bidi override", "title", withFiling(func(f *tocsin.Filing) { f.Title = "warning \u202egnp.exe" }), tocsin.CodeValidation},
		{"title zero-width only", "title", withFiling(func(f *tocsin.Filing) { f.Title = "\u200b\u200d\ufeff" }), tocsin.CodeValidation},
		{"content with NUL", "content", withFiling(func(f *tocsin.Filing) { f.Content = "请\x00留在室内" }), tocsin.CodeValidation},
		{"content with an escape", "content", withFiling(func(f *tocsin.Filing) { f.Content = "请留在室内\x1b[2J" }), tocsin.CodeValidation},
		{"content with DEL", "content", withFiling(func(f *tocsin.Filing) { f.Content = "请留在\x7f室内" }), tocsin.CodeValidation},
		{"content with a C1 control", "content", withFiling(func(f *tocsin.Filing) { f.Content = "请留在\u0085室内" }), tocsin.CodeValidation},
		{"content with a tab", "content", withFiling(func(f *tocsin.Filing) { f.Content = "请留在\t室内" }), tocsin.CodeValidation},
		{"content with a lone CR", "content", withFiling(func(f *tocsin.Filing) { f.Content = "请留在\r室内" }), tocsin.CodeValidation},
		{"content with a bidi isolate", "content", withFiling(func(f *tocsin.Filing) { f.Content = "请拨打\u2067110\u2069" }), tocsin.CodeValidation},
		{"content with an embedding", "content", withFiling(func(f *tocsin.Filing) { f.Content = "请拨打\u202a110" }), tocsin.CodeValidation},
		{"content zero-width only", "content", withFiling(func(f *tocsin.Filing) { f.Content = "\u200b \u2060\n\u200c" }), tocsin.CodeValidation},
		{"content not UTF-8", "content", withFiling(func(f *tocsin.Filing) { f.Content = "请\xff留在室内" }), tocsin.CodeValidation},
		{"content huge", "content", withFiling(func(f *tocsin.Filing) { f.Content = hugeText }), tocsin.CodeValidation},
		{"event too long", "emergency.event", withFiling(func(f *tocsin.Filing) { f.Emergency.Event = strings.Repeat("e", tocsin.MaxEventChars+1) }), tocsin.CodeValidation},
		{"event with a bidi override", "emergency.event", withFiling(func(f *tocsin.Filing) { f.Emergency.Event = "typhoon\u202d" }), tocsin.CodeValidation},
		{"event zero-width only", "emergency.event", withFiling(func(f *tocsin.Filing) { f.Emergency.Event = "\u200b" }), tocsin.CodeValidation},
		{"justification huge", "emergency.justification", withFiling(func(f *tocsin.Filing) { f.Emergency.Justification = hugeText }), tocsin.CodeValidation},
		{"justification with NUL", "emergency.justification", withFiling(func(f *tocsin.Filing) { f.Emergency.Justification = "landfall\x00" }), tocsin.CodeValidation},
		{"reject reason huge", "reason", func(e *env) error {
			_, err := e.svc.Reject(ctx, actor(t, "gd-cab"), pending(e), tocsin.ReasonOther, hugeText)
			return err
		}, tocsin.CodeValidation},
		{"reject reason with a bidi override", "reason", func(e *env) error {
			_, err := e.svc.Reject(ctx, actor(t, "gd-cab"), pending(e), tocsin.ReasonOther, "\u202eadvertising")
			return err
		}, tocsin.CodeValidation},
		{"reject reason zero-width only", "reason", func(e *env) error {
			_, err := e.svc.Reject(ctx, actor(t, "gd-cab"), pending(e), tocsin.ReasonOther, "\u200b")
			return err
		}, tocsin.CodeReasonRequired},
		{"withdraw reason huge", "reason", func(e *env) error {
			_, err := e.svc.Withdraw(ctx, actor(t, "gd-met"), pending(e), hugeText)
			return err
		}, tocsin.CodeValidation},
		{"withdraw reason with NUL", "reason", func(e *env) error {
			_, err := e.svc.Withdraw(ctx, actor(t, "gd-met"), pending(e), "typo\x00")
			return err
		}, tocsin.CodeValidation},
		{"cancel reason huge", "reason", func(e *env) error {
			_, err := e.svc.Cancel(ctx, actor(t, "gd-cab"), released(e), hugeText)
			return err
		}, tocsin.CodeValidation},
		{"post-hoc report huge", "report", func(e *env) error {
			_, err := e.svc.FilePostHoc(ctx, actor(t, "gd-met"), released(e), strings.Repeat("报", tocsin.MaxReportChars+1))
			return err
		}, tocsin.CodeValidation},
		{"post-hoc report zero-width only", "report", func(e *env) error {
			_, err := e.svc.FilePostHoc(ctx, actor(t, "gd-met"), released(e), "\ufeff")
			return err
		}, tocsin.CodeValidation},
		{"review note huge", "note", func(e *env) error {
			_, err := e.svc.ReviewPostHoc(ctx, actor(t, "gd-cab"), reported(e), tocsin.PostHocNotEmergency, hugeText)
			return err
		}, tocsin.CodeValidation},
		{"review note with an isolate", "note", func(e *env) error {
			_, err := e.svc.ReviewPostHoc(ctx, actor(t, "gd-cab"), reported(e), tocsin.PostHocAccepted, "ok\u2066")
			return err
		}, tocsin.CodeValidation},
		{"organisation name too long", "name", func(e *env) error {
			o := sichuan()
			o.Name = strings.Repeat("n", tocsin.MaxNameChars+1)
			return e.svc.PutOrganisation(ctx, o, nil)
		}, tocsin.CodeValidation},
		{"organisation name with a newline", "name", func(e *env) error {
			o := sichuan()
			o.Name = "Sichuan\nMet"
			return e.svc.PutOrganisation(ctx, o, nil)
		}, tocsin.CodeValidation},
		{"organisation Chinese name with an override", "name_zh", func(e *env) error {
			o := sichuan()
			o.NameZH = "四川\u202e省气象局"
			return e.svc.PutOrganisation(ctx, o, nil)
		}, tocsin.CodeValidation},
		{"provider name too long", "name", func(e *env) error {
			return e.svc.PutProvider(ctx, tocsin.Provider{ID: "cbn", Name: strings.Repeat("n", tocsin.MaxNameChars+1), Regions: []string{"440000"}})
		}, tocsin.CodeValidation},
		{"provider name zero-width only", "name", func(e *env) error {
			return e.svc.PutProvider(ctx, tocsin.Provider{ID: "cbn", Name: "\u200b", Regions: []string{"440000"}})
		}, tocsin.CodeValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustService(t, filedAt)
			before := e.trail(t)
			err := tt.do(e)
			wantCode(t, err, tt.code)
			if got := tocsin.ErrorDetails(err)["field"]; got != tt.field {
				t.Errorf("field = %v, want %s (%v)", got, tt.field, err)
			}
			if msg := tocsin.ErrorMessage(err); len(msg) > 300 || !strings.Contains(msg, strings.TrimPrefix(tt.field, "emergency.")) {
				t.Errorf("message %q is not a clear one about %s", msg, tt.field)
			}
			// A refusal writes nothing but, for a filing, its record in
			// the trail.
			if after := e.trail(t); after > before+3 {
				t.Errorf("the trail grew by %d entries", after-before)
			}
		})
	}
}

// trail counts the audit entries of every target the tests touch.
func (e *env) trail(tb testing.TB) int {
	tb.Helper()
	n := 0
	err := e.store.View(context.Background(), func(tx tocsin.ReadTx) error {
		for _, target := range []string{"gd-met", "sc-met", "cbn"} {
			entries, err := tx.Timeline(target)
			if err != nil {
				return err
			}
			n += len(entries)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func sichuan() tocsin.Organisation {
	return tocsin.Organisation{ID: "sc-met", Name: "Sichuan Meteorological Service", NameZH: "四川省气象局",
		Role: tocsin.RoleDepartment, Level: tocsin.LevelProvincial, Jurisdiction: "510000", SenderCode: "12379510"}
}

// What the rules allow: newlines in content (CRLF, as a browser sends a
// textarea, is stored as LF), joiners inside an emoji, tabs and newlines in
// a reason, text at the limit.
func TestFreeTextThatPasses(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	f := emergency(strings.Repeat("题", tocsin.MaxTitleChars), "440100")
	f.Content = "【广东省气象局】台风预警\r\n请留在室内 👨\u200d👩\u200d👧"
	f.Emergency.Justification = "landfall\n\twithin 12 hours"
	b := e.mustFile(t, "gd-met", f)
	if b.Content != "【广东省气象局】台风预警\n请留在室内 👨\u200d👩\u200d👧" {
		t.Errorf("content stored as %+q", b.Content)
	}
	p := e.mustFile(t, "gd-met", ordinary("pending", "440100"))
	got, err := e.svc.Withdraw(ctx, actor(t, "gd-met"), p.ID, "filed twice:\r\n\tsee BC000001")
	if err != nil {
		t.Fatal(err)
	}
	if got.Closure.Reason != "filed twice:\n\tsee BC000001" {
		t.Errorf("reason stored as %+q", got.Closure.Reason)
	}
}

// Ids are lower-case words joined by hyphens, 2-32 characters, and none
// of the coordinator's own names: registering provider "tocsin" once broke
// the NATS configuration for everyone.
func TestReservedAndInvalidIDs(t *testing.T) {
	tests := []struct {
		id       string
		org, prv bool // accepted as an organisation's, as a provider's
	}{
		{"cmcc", true, true},
		{"gd-met", true, true},
		{"gx-health", true, true},
		{"cu2", true, true},
		{"admin", true, false}, // the operator's organisation
		{"tocsin", false, false},
		{"tocsin-coordinator", false, false},
		{"tocsin-relay", false, false},
		{"sys", false, false},
		{"system", false, false},
		{"nats", false, false},
		{"route", false, false},
		{"TOCSIN", false, false},
		{"$G", false, false},
		{"$SYS", false, false},
		{"x", false, false},
		{strings.Repeat("a", 33), false, false},
		{strings.Repeat("a", 32), true, true},
		{"2cm", false, false},
		{"-cm", false, false},
		{"cm-", false, false},
		{"c--m", false, false},
		{"c.m", false, false},
		{"c*m", false, false},
		{"c>m", false, false},
		{"c m", false, false},
		{"cmcç", false, false},
	}
	e := mustService(t, filedAt)
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			o := tocsin.Organisation{ID: tt.id, Name: "Test", Role: tocsin.RoleRegulator, Level: tocsin.LevelNational, Jurisdiction: tocsin.National}
			err := e.svc.PutOrganisation(ctx, o, nil)
			if tt.org {
				if err != nil {
					t.Errorf("organisation %q refused: %v", tt.id, err)
				}
			} else {
				wantCode(t, err, tocsin.CodeValidation)
				if f := tocsin.ErrorDetails(err)["field"]; f != "id" {
					t.Errorf("field = %v, want id", f)
				}
			}
			err = e.svc.PutProvider(ctx, tocsin.Provider{ID: tt.id, Name: "Test", Regions: []string{"440000"}})
			if tt.prv {
				if err != nil {
					t.Errorf("provider %q refused: %v", tt.id, err)
				}
			} else {
				wantCode(t, err, tocsin.CodeValidation)
				var found bool
				_ = e.store.View(ctx, func(tx tocsin.ReadTx) error {
					_, err := tx.Provider(tt.id)
					found = err == nil
					return nil
				})
				if found {
					t.Errorf("provider %q was stored", tt.id)
				}
			}
		})
	}
}

// Client addresses in the trail are for regulators and the admin only.
func TestTimelineSourcesForSupervisorsOnly(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", ordinary("pending", "440100"))
	const addr = "198.51.100.7:50123"
	if _, err := e.svc.Approve(tocsin.WithSource(ctx, addr), actor(t, "gd-cab"), b.ID); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		org  string
		sees bool
	}{{"gd-met", false}, {"gd-cab", true}, {"miit", true}, {"admin", true}} {
		t.Run(tt.org, func(t *testing.T) {
			entries, err := e.svc.Timeline(ctx, actor(t, tt.org), b.ID)
			if err != nil {
				t.Fatal(err)
			}
			seen := false
			for _, en := range entries {
				seen = seen || en.Source == addr
				if !tt.sees && en.Source != "" {
					t.Errorf("%s reads source %q on %s", tt.org, en.Source, en.Action)
				}
			}
			if tt.sees && !seen {
				t.Errorf("%s does not see the approver's address", tt.org)
			}
		})
	}
}
