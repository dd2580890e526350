package calendar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tocsin-dev/tocsin/calendars"
)

// Year is one year's State Council holiday schedule, in the JSON form of the
// files under calendars/cn.
type Year struct {
	Year     int         `json:"year"`
	Notice   string      `json:"notice"`            // title of the State Council notice
	Source   *Source     `json:"source,omitempty"`  // the notice itself, when the file was made from it
	Sources  []string    `json:"sources,omitempty"` // where the dates were checked
	Holidays []Holiday   `json:"holidays"`          // days off
	Workdays []MakeUpDay `json:"workdays"`          // weekend days worked (调休上班)
}

// Source identifies the notice a file was read from. Files written before
// this field existed have none; Check accepts both.
type Source struct {
	Title  string `json:"title"`            // 国务院办公厅关于YYYY年部分节假日安排的通知
	Number string `json:"number,omitempty"` // document number, 国办发明电〔YYYY〕N号, when the text gives it
	Date   string `json:"date,omitempty"`   // date of issue (YYYY-MM-DD), when the text gives it
}

// Holiday is a run of days off, From and To (YYYY-MM-DD) both included.
// NameEN is optional.
type Holiday struct {
	Name   string `json:"name"`
	NameEN string `json:"name_en,omitempty"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// MakeUpDay is a Saturday or Sunday (Date, YYYY-MM-DD) that is a working day,
// in exchange for the holiday named by For.
type MakeUpDay struct {
	Date string `json:"date"`
	For  string `json:"for"`
}

const dateLayout = "2006-01-02"

// Range of accepted years: the PRC's national holiday system dates from
// 1949, and file names are four digits.
const (
	minYear = 1949
	maxYear = 9999
)

// ParseYear decodes and checks one year's file. Decoding is strict
// (unknown fields, trailing data and wrong types are errors with a line and
// column); the schedule must then pass Check, whose *CheckError names every
// broken rule with its field and date.
func ParseYear(data []byte) (Year, error) {
	var y Year
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&y); err != nil {
		return Year{}, jsonError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Year{}, fmt.Errorf("unexpected data after the JSON object at %s", position(data, dec.InputOffset()))
	}
	if err := Check(y); err != nil {
		return Year{}, err
	}
	if len(y.Sources) == 0 {
		y.Sources = nil // "sources": [] says what no sources does, and writes back as it
	}
	return y, nil
}

// jsonError adds a line and column to decoding errors that carry an offset.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("invalid JSON at %s: %w", position(data, syn.Offset), err)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Errorf("invalid JSON at %s: %w", position(data, typ.Offset), err)
	}
	if errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: empty input")
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// position turns a byte offset into "line L, column C" (1-based).
func position(data []byte, off int64) string {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

type parsedYear struct {
	holidays []parsedHoliday
	makeup   []parsedMakeUp
	nameEN   map[string]string // Chinese holiday name -> English name
}

type parsedHoliday struct {
	name, nameEN string
	from, to     time.Time
}

type parsedMakeUp struct {
	date    time.Time
	forName string
}

// checkText requires a non-blank, single-line text: names end up in
// one-line CLI output.
func checkText(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("missing or blank")
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%q contains a control character or line break", s)
		}
	}
	return nil
}

// Load returns the calendar of the years embedded in package calendars,
// followed by every YYYY.json in dir (if dir is not empty), which adds years
// or replaces embedded ones. Other .json files in dir are an error (most
// likely a misnamed year); files not ending in .json are ignored. A file's
// "year" must match its name. Errors name the file.
func Load(dir string) (*Calendar, error) {
	years, err := readYears(calendars.FS, "cn", "embedded calendars/cn")
	if err != nil {
		return nil, err
	}
	if dir != "" {
		extra, err := readYears(os.DirFS(dir), ".", dir)
		if err != nil {
			return nil, err
		}
		years = append(years, extra...)
	}
	return New(years...)
}

// readYears parses every YYYY.json directly in dir of fsys, in name order.
// label names the directory in errors.
func readYears(fsys fs.FS, dir, label string) ([]Year, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("calendar: reading calendar directory %s: %w", label, err)
	}
	var years []Year
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		file := filepath.Join(label, name)
		n, ok := fileYear(name)
		if !ok {
			return nil, fmt.Errorf("calendar: %s: calendar files must be named YYYY.json", file)
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("calendar: %s: %w", file, err)
		}
		y, err := ParseYear(data)
		if err != nil {
			return nil, fmt.Errorf("calendar: %s: %w", file, err)
		}
		if y.Year != n {
			return nil, fmt.Errorf("calendar: %s: file is named for %d but its \"year\" is %d", file, n, y.Year)
		}
		years = append(years, y)
	}
	return years, nil
}

// fileYear returns the year of a file named YYYY.json.
func fileYear(name string) (int, bool) {
	base, ok := strings.CutSuffix(name, ".json")
	if !ok || len(base) != 4 {
		return 0, false
	}
	for _, r := range base {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(base)
	return n, err == nil
}

// spaced puts a space after each colon and comma of compact JSON that
// separates keys, values and elements, and after none inside a string
// (a source or a name may hold `":` or `","` itself).
func spaced(compact []byte) string {
	var b strings.Builder
	inString, escaped := false, false
	for _, c := range compact {
		b.WriteByte(c)
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ':' || c == ','):
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// EncodeYear writes y in the layout of the files under calendars/cn: one
// holiday or make-up day a line, so that a diff of two versions reads as a
// diff of the schedule. y must pass Check.
func EncodeYear(y Year) ([]byte, error) {
	if err := Check(y); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	line := func(v any) string {
		out, _ := json.Marshal(v) // plain structs of strings: cannot fail
		return spaced(out)
	}
	fmt.Fprintf(&b, "{\n  \"year\": %d,\n  \"notice\": %s,\n", y.Year, line(y.Notice))
	if y.Source != nil {
		fmt.Fprintf(&b, "  \"source\": %s,\n", line(y.Source))
	}
	if len(y.Sources) > 0 {
		b.WriteString("  \"sources\": [\n")
		for i, s := range y.Sources {
			b.WriteString("    " + line(s))
			if i < len(y.Sources)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString("  ],\n")
	}
	b.WriteString("  \"holidays\": [\n")
	for i, h := range y.Holidays {
		b.WriteString("    " + line(h))
		if i < len(y.Holidays)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("  ],\n  \"workdays\": [")
	for i, w := range y.Workdays {
		if i == 0 {
			b.WriteByte('\n')
		}
		b.WriteString("    " + line(w))
		if i < len(y.Workdays)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	if len(y.Workdays) > 0 {
		b.WriteString("  ")
	}
	b.WriteString("]\n}\n")
	return b.Bytes(), nil
}
