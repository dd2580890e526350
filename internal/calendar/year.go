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
	Notice   string      `json:"notice"`   // title of the State Council notice
	Sources  []string    `json:"sources"`  // where the dates were checked
	Holidays []Holiday   `json:"holidays"` // days off
	Workdays []MakeUpDay `json:"workdays"` // weekend days worked (调休上班)
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

// ParseYear decodes and checks one year's file. It is strict: unknown
// fields, trailing data, malformed dates, dates outside the year, a holiday
// whose from is after its to, a day listed twice, a make-up working day that
// is not a Saturday or Sunday, and a date that is both a holiday and a
// make-up working day are all rejected, with an error naming the field and
// date.
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
	if _, err := y.parse(); err != nil {
		return Year{}, err
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

// parse checks y and returns its dates. Errors start with the year.
func (y Year) parse() (*parsedYear, error) {
	if y.Year < minYear || y.Year > maxYear {
		return nil, fmt.Errorf("year: %d is missing or out of range (%d to %d)", y.Year, minYear, maxYear)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("year %d: "+format, append([]any{y.Year}, args...)...)
	}
	if err := checkText(y.Notice); err != nil {
		return nil, fail("notice: %v", err)
	}
	for i, s := range y.Sources {
		if err := checkText(s); err != nil {
			return nil, fail("sources[%d]: %v", i, err)
		}
	}
	if len(y.Holidays) == 0 {
		return nil, fail("holidays: none listed")
	}

	p := &parsedYear{nameEN: make(map[string]string)}
	// owner records which entry already claimed a date, for error messages.
	owner := make(map[string]string)
	for i, h := range y.Holidays {
		field := fmt.Sprintf("holidays[%d]", i)
		if err := checkText(h.Name); err != nil {
			return nil, fail("%s.name: %v", field, err)
		}
		field += " (" + h.Name + ")"
		if h.NameEN != "" {
			if err := checkText(h.NameEN); err != nil {
				return nil, fail("%s.name_en: %v", field, err)
			}
		}
		from, err := parseDate(h.From, y.Year)
		if err != nil {
			return nil, fail("%s.from: %v", field, err)
		}
		to, err := parseDate(h.To, y.Year)
		if err != nil {
			return nil, fail("%s.to: %v", field, err)
		}
		if to.Before(from) {
			return nil, fail("%s: from %s is after to %s", field, h.From, h.To)
		}
		for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
			ds := d.Format(dateLayout)
			if prev, ok := owner[ds]; ok {
				return nil, fail("%s: %s is already a holiday in %s", field, ds, prev)
			}
			owner[ds] = field
		}
		p.holidays = append(p.holidays, parsedHoliday{name: h.Name, nameEN: h.NameEN, from: from, to: to})
		if _, ok := p.nameEN[h.Name]; !ok && h.NameEN != "" {
			p.nameEN[h.Name] = h.NameEN
		}
	}
	for i, m := range y.Workdays {
		field := fmt.Sprintf("workdays[%d]", i)
		d, err := parseDate(m.Date, y.Year)
		if err != nil {
			return nil, fail("%s.date: %v", field, err)
		}
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			return nil, fail("%s.date: %s is a %s; a make-up working day must be a Saturday or Sunday", field, m.Date, wd)
		}
		if prev, ok := owner[m.Date]; ok {
			if strings.HasPrefix(prev, "holidays[") {
				return nil, fail("%s.date: %s is both a make-up working day and a holiday in %s", field, m.Date, prev)
			}
			return nil, fail("%s.date: %s is already listed in %s", field, m.Date, prev)
		}
		owner[m.Date] = field
		if err := checkText(m.For); err != nil {
			return nil, fail("%s.for: %v", field, err)
		}
		p.makeup = append(p.makeup, parsedMakeUp{date: d, forName: m.For})
	}
	return p, nil
}

// parseDate parses s as YYYY-MM-DD, midnight in Shanghai, inside year.
func parseDate(s string, year int) (time.Time, error) {
	d, err := time.ParseInLocation(dateLayout, s, Shanghai)
	if err != nil || d.Format(dateLayout) != s {
		return time.Time{}, fmt.Errorf("%q is not a valid date (YYYY-MM-DD)", s)
	}
	if d.Year() != year {
		return time.Time{}, fmt.Errorf("%s is not in year %d", s, year)
	}
	return d, nil
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
