package cap_test

import (
	"bytes"
	"encoding/xml"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/cap"
	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

const baseURL = "https://tocsin.example.gov.cn"

var (
	filed    = time.Date(2026, 9, 18, 10, 0, 0, 0, tocsin.Shanghai)
	released = filed.Add(2 * time.Second)
	stopped  = filed.Add(20 * time.Minute)
)

// names is the Chinese full name of a region, as the API passes it.
var names = region.Default().FullName

// emergencyBroadcast is a released red typhoon warning for Guangzhou and
// Tianhe District.
func emergencyBroadcast() *tocsin.Broadcast {
	rel := released
	until := filed.Add(6 * time.Hour)
	return &tocsin.Broadcast{
		ID: "BC000001", Status: tocsin.StatusDispatching,
		Title:    "内部：海燕 第3号 (desk draft)",
		Headline: "台风红色预警",
		Content:  "【广东省气象局】台风“海燕”将于今夜登陆，请留在室内，远离海边。",
		Scope:    []string{"440100", "440106"},
		SendAt:   filed, SendUntil: &until,
		Emergency:  &tocsin.Emergency{Type: tocsin.NaturalDisaster, Event: "typhoon", Level: tocsin.Red, Justification: "landfall tonight"},
		Department: "gd-met", Agency: "Guangdong Meteorological Service", SenderCode: "12379440",
		FiledBy: "gd-met", FiledAt: filed, ReleasedAt: &rel,
	}
}

// ordinaryBroadcast is a non-emergency reminder waiting for review.
func ordinaryBroadcast() *tocsin.Broadcast {
	return &tocsin.Broadcast{
		ID: "BC000002", Status: tocsin.StatusPendingReview,
		Title:      "国庆假期出行提示",
		Content:    "【广东省气象局】国庆假期请关注天气预报，合理安排出行。",
		Scope:      []string{"440000"},
		SendAt:     time.Date(2026, 10, 9, 9, 0, 0, 0, tocsin.Shanghai),
		Department: "gd-met", Agency: "Guangdong Meteorological Service", SenderCode: "12379440",
		FiledBy: "gd-met", FiledAt: filed, EarliestSendDate: "2026-10-09",
	}
}

// stoppedBroadcast is an emergency the regulator cancelled after release.
func stoppedBroadcast() *tocsin.Broadcast {
	b := emergencyBroadcast()
	b.ID, b.Status = "BC000003", tocsin.StatusCancelled
	b.Closure = &tocsin.Closure{Action: tocsin.StatusCancelled, Org: "gd-cab", By: "gd-cab", At: stopped, Reason: "wrong district"}
	return b
}

// exerciseBroadcast is a released drill.
func exerciseBroadcast() *tocsin.Broadcast {
	b := emergencyBroadcast()
	b.ID, b.Exercise = "BC000004", true
	b.Title, b.Headline = "地震应急演练", ""
	b.Content = "【广东省应急管理厅】演练：今天上午10时举行地震应急疏散演练。"
	b.Emergency = &tocsin.Emergency{Type: tocsin.NaturalDisaster, Event: "地震", Level: tocsin.Orange}
	return b
}

// kinds are the broadcasts whose CAP every consumer must accept.
func kinds() map[string]*tocsin.Broadcast {
	withdrawn := ordinaryBroadcast()
	withdrawn.ID, withdrawn.Status = "BC000005", tocsin.StatusWithdrawn
	withdrawn.Closure = &tocsin.Closure{Action: tocsin.StatusWithdrawn, Org: "gd-met", By: "gd-met", At: stopped}
	return map[string]*tocsin.Broadcast{
		"emergency": emergencyBroadcast(),
		"ordinary":  ordinaryBroadcast(),
		"stop":      stoppedBroadcast(),
		"exercise":  exerciseBroadcast(),
		"withdrawn": withdrawn,
	}
}

// capAlert is an independent reading of a CAP 1.2 alert: the test's own
// structs, with the namespace checked on every element that matters.
type capAlert struct {
	XMLName    xml.Name `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 identifier"`
	Sender     string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 sender"`
	Sent       string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 sent"`
	Status     string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 status"`
	MsgType    string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 msgType"`
	Scope      string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 scope"`
	Note       string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 note"`
	References string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 references"`
	Info       []struct {
		Language    string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 language"`
		Category    []string `xml:"urn:oasis:names:tc:emergency:cap:1.2 category"`
		Event       string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 event"`
		Urgency     string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 urgency"`
		Severity    string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 severity"`
		Certainty   string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 certainty"`
		Effective   string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 effective"`
		Expires     string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 expires"`
		SenderName  string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 senderName"`
		Headline    string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 headline"`
		Description string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 description"`
		Web         string   `xml:"urn:oasis:names:tc:emergency:cap:1.2 web"`
		Parameter   []struct {
			ValueName string `xml:"urn:oasis:names:tc:emergency:cap:1.2 valueName"`
			Value     string `xml:"urn:oasis:names:tc:emergency:cap:1.2 value"`
		} `xml:"urn:oasis:names:tc:emergency:cap:1.2 parameter"`
		Area []struct {
			AreaDesc string `xml:"urn:oasis:names:tc:emergency:cap:1.2 areaDesc"`
			Geocode  []struct {
				ValueName string `xml:"urn:oasis:names:tc:emergency:cap:1.2 valueName"`
				Value     string `xml:"urn:oasis:names:tc:emergency:cap:1.2 value"`
			} `xml:"urn:oasis:names:tc:emergency:cap:1.2 geocode"`
		} `xml:"urn:oasis:names:tc:emergency:cap:1.2 area"`
	} `xml:"urn:oasis:names:tc:emergency:cap:1.2 info"`
}

func mustEncode(t testing.TB, b *tocsin.Broadcast, opts ...cap.Option) []byte {
	t.Helper()
	out, err := cap.Encode(b, names, baseURL, opts...)
	if err != nil {
		t.Fatalf("Encode(%s): %v", b.ID, err)
	}
	return out
}

func readAlert(t testing.TB, data []byte) capAlert {
	t.Helper()
	var a capAlert
	if err := xml.Unmarshal(data, &a); err != nil {
		t.Fatalf("the CAP does not parse: %v\n%s", err, data)
	}
	return a
}

func TestEncodeEmergency(t *testing.T) {
	out := mustEncode(t, emergencyBroadcast())
	if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
		t.Errorf("no XML declaration:\n%s", out)
	}
	a := readAlert(t, out)
	want := map[string][2]string{
		"identifier": {a.Identifier, "tocsin-BC000001"},
		"sender":     {a.Sender, "gd-met@tocsin.example.gov.cn"},
		"sent":       {a.Sent, "2026-09-18T10:00:00+08:00"},
		"status":     {a.Status, "Actual"},
		"msgType":    {a.MsgType, "Alert"},
		"scope":      {a.Scope, "Public"},
		"note":       {a.Note, ""},
		"references": {a.References, ""},
	}
	for name, gw := range want {
		if gw[0] != gw[1] {
			t.Errorf("%s = %q, want %q", name, gw[0], gw[1])
		}
	}
	if len(a.Info) != 1 {
		t.Fatalf("%d info blocks, want 1", len(a.Info))
	}
	in := a.Info[0]
	for name, gw := range map[string][2]string{
		"language":    {in.Language, "zh-CN"},
		"event":       {in.Event, "typhoon"},
		"urgency":     {in.Urgency, "Immediate"},
		"severity":    {in.Severity, "Extreme"},
		"certainty":   {in.Certainty, "Observed"},
		"effective":   {in.Effective, "2026-09-18T10:00:00+08:00"},
		"expires":     {in.Expires, "2026-09-18T16:00:00+08:00"},
		"senderName":  {in.SenderName, "Guangdong Meteorological Service"},
		"headline":    {in.Headline, "台风红色预警"},
		"description": {in.Description, "【广东省气象局】台风“海燕”将于今夜登陆，请留在室内，远离海边。"},
		"web":         {in.Web, baseURL + "/broadcasts/BC000001"},
	} {
		if gw[0] != gw[1] {
			t.Errorf("info/%s = %q, want %q", name, gw[0], gw[1])
		}
	}
	if !slices.Equal(in.Category, []string{"Met"}) {
		t.Errorf("category = %q, want [Met]", in.Category)
	}
	if len(in.Area) != 1 {
		t.Fatalf("%d areas, want 1", len(in.Area))
	}
	if got, want := in.Area[0].AreaDesc, "广东省 广州市、广东省 广州市 天河区"; got != want {
		t.Errorf("areaDesc = %q, want %q", got, want)
	}
	var codes []string
	for _, g := range in.Area[0].Geocode {
		if g.ValueName != "GB/T 2260" {
			t.Errorf("geocode valueName = %q, want GB/T 2260", g.ValueName)
		}
		codes = append(codes, g.Value)
	}
	if !slices.Equal(codes, []string{"440100", "440106"}) {
		t.Errorf("geocodes = %q, want the scope", codes)
	}
	params := map[string]string{}
	for _, p := range in.Parameter {
		params[p.ValueName] = p.Value
	}
	wantParams := map[string]string{"tocsin:sender_code": "12379440", "tocsin:emergency_type": "natural_disaster", "tocsin:warning_level": "red"}
	if !reflect.DeepEqual(params, wantParams) {
		t.Errorf("parameters = %v, want %v", params, wantParams)
	}
	if strings.Contains(string(out), "landfall tonight") {
		t.Error("the department's justification to the regulator is published in the CAP")
	}
}

func TestEncodeKinds(t *testing.T) {
	tests := []struct {
		kind       string
		status     string
		msgType    string
		identifier string
		sent       string
		references string
		infos      int
		note       string
	}{
		{"emergency", "Actual", "Alert", "tocsin-BC000001", "2026-09-18T10:00:00+08:00", "", 1, ""},
		{"ordinary", "Actual", "Alert", "tocsin-BC000002", "2026-09-18T10:00:00+08:00", "", 1, ""},
		{"stop", "Actual", "Cancel", "tocsin-BC000003-cancel", "2026-09-18T10:20:00+08:00",
			"gd-met@tocsin.example.gov.cn,tocsin-BC000003,2026-09-18T10:00:00+08:00", 0, "stopped"},
		{"withdrawn", "Actual", "Cancel", "tocsin-BC000005-cancel", "2026-09-18T10:20:00+08:00",
			"gd-met@tocsin.example.gov.cn,tocsin-BC000005,2026-09-18T10:00:00+08:00", 0, "stopped"},
		{"exercise", "Exercise", "Alert", "tocsin-BC000004", "2026-09-18T10:00:00+08:00", "", 1, "Exercise"},
	}
	all := kinds()
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			b := all[tt.kind]
			out := mustEncode(t, b)
			a := readAlert(t, out)
			if a.Status != tt.status || a.MsgType != tt.msgType || a.Identifier != tt.identifier || a.Sent != tt.sent || a.References != tt.references {
				t.Errorf("status, msgType, identifier, sent, references = %q, %q, %q, %q, %q; want %q, %q, %q, %q, %q",
					a.Status, a.MsgType, a.Identifier, a.Sent, a.References, tt.status, tt.msgType, tt.identifier, tt.sent, tt.references)
			}
			if len(a.Info) != tt.infos {
				t.Errorf("%d info blocks, want %d", len(a.Info), tt.infos)
			}
			if !strings.Contains(a.Note, tt.note) {
				t.Errorf("note %q does not say %q", a.Note, tt.note)
			}
			if b.Closure != nil && (strings.Contains(string(out), b.Content) || strings.Contains(string(out), b.Title)) {
				t.Errorf("the Cancel of a stopped message repeats it (Article 28):\n%s", out)
			}
		})
	}
}

// TestEncodeUpdate covers a correction: msgType Update, with references to
// the original alert.
func TestEncodeUpdate(t *testing.T) {
	b := emergencyBroadcast()
	b.ID, b.References = "BC000009", "BC000001"
	if _, err := cap.Encode(b, names, baseURL); err == nil {
		t.Error("Encode of a correction without its original succeeded; want an error")
	}
	out := mustEncode(t, b, cap.Original(emergencyBroadcast()))
	if msg, ok := lint(t, out, "--schema", schema(t)); !ok {
		t.Errorf("the CAP of a correction is not valid CAP 1.2:\n%s\n%s", msg, out)
	}
	a := readAlert(t, out)
	if a.MsgType != "Update" || a.Identifier != "tocsin-BC000009" {
		t.Errorf("msgType, identifier = %q, %q; want Update, tocsin-BC000009", a.MsgType, a.Identifier)
	}
	if want := "gd-met@tocsin.example.gov.cn,tocsin-BC000001,2026-09-18T10:00:00+08:00"; a.References != want {
		t.Errorf("references = %q, want %q", a.References, want)
	}
}

func TestWarningLevels(t *testing.T) {
	tests := []struct {
		level                        tocsin.WarningLevel
		urgency, severity, certainty string
	}{
		{tocsin.Red, "Immediate", "Extreme", "Observed"},
		{tocsin.Orange, "Expected", "Severe", "Likely"},
		{tocsin.Yellow, "Expected", "Moderate", "Likely"},
		{tocsin.Blue, "Future", "Minor", "Possible"},
		{"", "Unknown", "Unknown", "Unknown"}, // ordinary
	}
	for _, tt := range tests {
		name := string(tt.level)
		if name == "" {
			name = "ordinary"
		}
		t.Run(name, func(t *testing.T) {
			b := emergencyBroadcast()
			b.Emergency.Level = tt.level
			if tt.level == "" {
				b.Emergency = nil
			}
			in := readAlert(t, mustEncode(t, b)).Info[0]
			if in.Urgency != tt.urgency || in.Severity != tt.severity || in.Certainty != tt.certainty {
				t.Errorf("urgency/severity/certainty = %s/%s/%s, want %s/%s/%s",
					in.Urgency, in.Severity, in.Certainty, tt.urgency, tt.severity, tt.certainty)
			}
		})
	}
}

func TestCategories(t *testing.T) {
	tests := []struct {
		typ   tocsin.EmergencyType
		event string
		want  []string
	}{
		{tocsin.NaturalDisaster, "typhoon", []string{"Met"}},
		{tocsin.NaturalDisaster, "暴雨", []string{"Met"}},
		{tocsin.NaturalDisaster, "地震", []string{"Geo"}},
		{tocsin.NaturalDisaster, "Landslide", []string{"Geo"}},
		{tocsin.NaturalDisaster, "山体滑坡", []string{"Geo"}},
		{tocsin.Accident, "chemical leak", []string{"Safety"}},
		{tocsin.Accident, "道路交通事故", []string{"Safety", "Transport"}},
		{tocsin.Accident, "高层建筑火灾", []string{"Safety", "Fire"}},
		{tocsin.PublicHealth, "流感", []string{"Health"}},
		{tocsin.SocialSecurity, "恐怖袭击", []string{"Security"}},
		{"", "", []string{"Other"}}, // ordinary
	}
	for _, tt := range tests {
		t.Run(string(tt.typ)+"/"+tt.event, func(t *testing.T) {
			var e *tocsin.Emergency
			if tt.typ != "" {
				e = &tocsin.Emergency{Type: tt.typ, Event: tt.event, Level: tocsin.Yellow}
			}
			if got := cap.Categories(e); !slices.Equal(got, tt.want) {
				t.Errorf("Categories = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncodeEscapesAndSender(t *testing.T) {
	b := ordinaryBroadcast()
	b.Headline = `<b>"&"</b>`
	b.Content = "a]]>b & <c>\n第二行"
	b.Department = "odd dept,<x>&"
	out, err := cap.Encode(b, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	a := readAlert(t, out)
	if a.Info[0].Headline != b.Headline || a.Info[0].Description != b.Content {
		t.Errorf("headline, description = %q, %q; want them as filed", a.Info[0].Headline, a.Info[0].Description)
	}
	if a.Sender != "odd_dept__x>_@tocsin" {
		t.Errorf("sender = %q, want the forbidden characters replaced and host tocsin", a.Sender)
	}
	if a.Info[0].Web != "" {
		t.Errorf("web = %q without a base URL, want none", a.Info[0].Web)
	}
	if a.Info[0].Area[0].AreaDesc != "440000" {
		t.Errorf("areaDesc without names = %q, want the code", a.Info[0].Area[0].AreaDesc)
	}
}

func TestPublic(t *testing.T) {
	all := kinds()
	cancelledBeforeRelease := ordinaryBroadcast()
	cancelledBeforeRelease.Status = tocsin.StatusCancelled
	completed := emergencyBroadcast()
	completed.Status = tocsin.StatusCompleted
	tests := []struct {
		name string
		b    *tocsin.Broadcast
		want bool
	}{
		{"dispatching", all["emergency"], true},
		{"completed", completed, true},
		{"stopped after release", all["stop"], true},
		{"pending review", all["ordinary"], false},
		{"withdrawn", all["withdrawn"], false},
		{"cancelled before release", cancelledBeforeRelease, false},
		{"exercise", all["exercise"], false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := cap.Public(tt.b); got != tt.want {
			t.Errorf("Public(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func tocsinLevel(s string) tocsin.WarningLevel { return tocsin.WarningLevel(s) }

func tocsinType(s string) tocsin.EmergencyType { return tocsin.EmergencyType(s) }
