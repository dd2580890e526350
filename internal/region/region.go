// Package region knows the GB/T 2260 administrative divisions of China, with
// their Chinese names, so that broadcast scopes can be validated and
// displayed.
//
// A division code has six digits: two for the province, two for the
// prefecture and two for the county. A code ending in 0000 is a province
// (440000 广东省), one ending in 00 is a prefecture (440100 广州市, and the
// placeholder groupings 市辖区, 县, 省直辖县级行政区划 and
// 自治区直辖县级行政区划), and any other is a county (440106 天河区).
// The pure functions Province, Contains and Overlaps work on that structure
// alone; the methods of Divisions answer whether a code exists and what it is
// called. The scope "national" contains every code.
//
// The embedded table (divisions.tsv, see Default and Edition) is the
// National Bureau of Statistics 2023 statistical division codes (as of
// 2023-06-30), province, prefecture and county levels, taken from the npm
// package china-division 2.7.0, plus 710000 台湾省, 810000 香港特别行政区 and
// 820000 澳门特别行政区 by name only (no children). That package's
// package.json declares the licence "MIT" while its LICENSE file, copied to
// LICENSE.china-division, is the WTFPL version 2; the header of
// divisions.tsv records both.
//
// To regenerate the table:
//
//	cd /tmp && npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz
//	CHINA_DIVISION_SRC=/tmp/package go generate ./internal/region/
package region

//go:generate go run ./gen -src=$CHINA_DIVISION_SRC

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// national is the scope that contains every division.
const national = "national"

//go:embed divisions.tsv
var divisionsTSV string

// Edition describes the embedded table returned by Default.
func Edition() string {
	return "NBS 2023 statistical division codes (china-division 2.7.0)"
}

// Level is the tier of a division.
type Level int

// The division levels, from the top.
const (
	LevelProvince   Level = iota + 1 // 省级: code ends in 0000
	LevelPrefecture                  // 地级: code ends in 00
	LevelCounty                      // 县级: any other code
)

// String returns "province", "prefecture" or "county".
func (l Level) String() string {
	switch l {
	case LevelProvince:
		return "province"
	case LevelPrefecture:
		return "prefecture"
	case LevelCounty:
		return "county"
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

// Division is one administrative division.
type Division struct {
	Code  string // six digits, e.g. "440106"
	Name  string // Chinese name, e.g. "天河区"
	Level Level
}

// Divisions is a table of divisions. It is immutable and safe for
// concurrent use; the zero value is an empty table.
type Divisions struct {
	byCode    map[string]Division
	provinces []Division
	children  map[string][]Division
}

var defaultDivisions = sync.OnceValue(func() *Divisions {
	d, err := Parse(strings.NewReader(divisionsTSV))
	if err != nil {
		panic("region: embedded divisions.tsv: " + err.Error())
	}
	return d
})

// Default returns the embedded edition (see Edition), parsed on first use.
func Default() *Divisions { return defaultDivisions() }

// maxLine bounds the length of one line accepted by Parse.
const maxLine = 4096

// Parse reads a table in the format of divisions.tsv: one "code<TAB>name"
// per line, where code is six ASCII digits and name is non-empty UTF-8.
// Empty lines and lines starting with '#' are ignored, and lines may end in
// CRLF. Rows may come in any order, but codes must be unique and every
// prefecture's province and every county's prefecture must be present.
func Parse(r io.Reader) (*Divisions, error) {
	d := &Divisions{
		byCode:   map[string]Division{},
		children: map[string][]Division{},
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if text == "" || text[0] == '#' {
			continue
		}
		code, name, ok := strings.Cut(text, "\t")
		switch {
		case !ok:
			return nil, fmt.Errorf("region: line %d: want code<TAB>name", line)
		case !wellFormed(code):
			return nil, fmt.Errorf("region: line %d: code %q is not six digits", line, code)
		case name == "" || strings.TrimSpace(name) != name:
			return nil, fmt.Errorf("region: line %d: %s: empty or padded name", line, code)
		case strings.ContainsRune(name, '\t') || !utf8.ValidString(name):
			return nil, fmt.Errorf("region: line %d: %s: name has a tab or invalid UTF-8", line, code)
		}
		if _, dup := d.byCode[code]; dup {
			return nil, fmt.Errorf("region: line %d: duplicate code %s", line, code)
		}
		d.byCode[code] = Division{Code: code, Name: name, Level: levelOf(code)}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("region: line %d: longer than %d bytes", line+1, maxLine)
		}
		return nil, fmt.Errorf("region: %w", err)
	}
	if len(d.byCode) == 0 {
		return nil, errors.New("region: no divisions")
	}
	for code, div := range d.byCode {
		if div.Level == LevelProvince {
			d.provinces = append(d.provinces, div)
			continue
		}
		parent := parentOf(code)
		if div.Level == LevelCounty && code[2:4] == "00" {
			return nil, fmt.Errorf("region: county %s %s has no prefecture digits", code, div.Name)
		}
		if _, ok := d.byCode[parent]; !ok {
			return nil, fmt.Errorf("region: %s %s: parent %s is missing", code, div.Name, parent)
		}
		d.children[parent] = append(d.children[parent], div)
	}
	byCode := func(a, b Division) int { return strings.Compare(a.Code, b.Code) }
	slices.SortFunc(d.provinces, byCode)
	for _, c := range d.children {
		slices.SortFunc(c, byCode)
	}
	return d, nil
}

// Lookup returns the division with the given code.
func (d *Divisions) Lookup(code string) (Division, bool) {
	div, ok := d.byCode[code]
	return div, ok
}

// Name returns the name of the division with the given code, or "" if there
// is none.
func (d *Divisions) Name(code string) string { return d.byCode[code].Name }

// FullName returns the names of the division and its ancestors, from the
// province down, separated by spaces: "广东省 广州市 天河区". Placeholder
// prefectures (市辖区, 县, 省直辖县级行政区划, 自治区直辖县级行政区划) are
// left out when they are ancestors, so 110101 is "北京市 东城区", but kept
// when they are the division itself. It returns "" for an unknown code.
func (d *Divisions) FullName(code string) string {
	div, ok := d.byCode[code]
	if !ok {
		return ""
	}
	var parts []string
	if div.Level != LevelProvince {
		parts = append(parts, d.byCode[Province(code)].Name)
	}
	if div.Level == LevelCounty {
		if p := d.byCode[parentOf(code)].Name; !placeholder(p) {
			parts = append(parts, p)
		}
	}
	return strings.Join(append(parts, div.Name), " ")
}

func placeholder(name string) bool {
	switch name {
	case "市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划":
		return true
	}
	return false
}

// Validate returns nil if code is in the table and an *UnknownCodeError
// otherwise, including for malformed codes. The scope "national" is not a
// division code and does not validate.
func (d *Divisions) Validate(code string) error {
	if _, ok := d.byCode[code]; ok {
		return nil
	}
	return &UnknownCodeError{Code: code}
}

// Provinces returns the provincial-level divisions, sorted by code. The
// caller may modify the returned slice.
func (d *Divisions) Provinces() []Division { return slices.Clone(d.provinces) }

// Children returns the direct children of the division, sorted by code: the
// prefectures of a province or the counties of a prefecture. It returns nil
// for a county, an unknown code, or a division without children. The
// caller may modify the returned slice.
func (d *Divisions) Children(code string) []Division { return slices.Clone(d.children[code]) }

// UnknownCodeError reports a region code that is not in the table.
type UnknownCodeError struct {
	Code string
}

func (e *UnknownCodeError) Error() string {
	if !wellFormed(e.Code) {
		return fmt.Sprintf("unknown region code %q: not a six-digit GB/T 2260 code", e.Code)
	}
	return fmt.Sprintf("unknown region code %q", e.Code)
}

// Province returns the code of the province containing code ("440106" →
// "440000"), or "" if code is not six digits. It does not consult a table.
func Province(code string) string {
	if !wellFormed(code) {
		return ""
	}
	return code[:2] + "0000"
}

// Contains reports whether the scope outer contains the scope inner, judged
// on the structure of the codes alone: a province contains every code with
// its first two digits, a prefecture every code with its first four, a
// county only itself, and "national" contains itself and every six-digit
// code. It reports false if either code is malformed.
func Contains(outer, inner string) bool {
	if outer == national {
		return inner == national || wellFormed(inner)
	}
	// Codes of different provinces are the common answer (a release asks
	// it of every registered provider), and it needs no closer look.
	if len(outer) == 6 && len(inner) == 6 && outer[:2] != inner[:2] {
		return false
	}
	if !wellFormed(outer) || !wellFormed(inner) {
		return false
	}
	switch levelOf(outer) {
	case LevelProvince:
		return outer[:2] == inner[:2]
	case LevelPrefecture:
		return outer[:4] == inner[:4]
	}
	return outer == inner
}

// Overlaps reports whether one of the scopes contains the other.
func Overlaps(a, b string) bool { return Contains(a, b) || Contains(b, a) }

func wellFormed(code string) bool {
	if len(code) != 6 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// levelOf returns the level of a well-formed code.
func levelOf(code string) Level {
	switch {
	case code[2:] == "0000":
		return LevelProvince
	case code[4:] == "00":
		return LevelPrefecture
	}
	return LevelCounty
}

// parentOf returns the parent code of a well-formed prefecture or county
// code.
func parentOf(code string) string {
	if levelOf(code) == LevelPrefecture {
		return code[:2] + "0000"
	}
	return code[:4] + "00"
}

// Province is Province as a method, so *Divisions serves as the domain's
// region directory.
func (d *Divisions) Province(code string) string { return Province(code) }

// Contains is Contains as a method, for the same reason.
func (d *Divisions) Contains(outer, inner string) bool { return Contains(outer, inner) }
