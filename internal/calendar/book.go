package calendar

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tocsin-dev/tocsin/internal/atomicfile"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Book loads calendar years into a running coordinator: parsed from the
// State Council's notice or a calendar file, checked, written to the data
// folder (so the next start has them), made the calendar's at once, and
// audited. Every reader of Calendar sees the new year from then on.
type Book struct {
	Calendar *Calendar
	// Dir is the data folder's calendar directory; it is read at start
	// after the embedded years and --calendars.
	Dir     string
	Service *tocsin.Service
}

// Loaded is what a load did, or would do on a dry run.
type Loaded struct {
	Year    Year
	Changes []DayChange
	DryRun  bool
}

// Load reads body as a notice's text (notice true) or a calendar JSON
// file, checks it, and unless dryRun makes it the calendar of year. The
// errors are *tocsin.Error: forbidden for anyone but admin, validation
// for text it cannot read or a schedule that breaks a rule (naming the
// sentence or the date and the rule), conflict for a year other than the
// one named.
func (b *Book) Load(ctx context.Context, a tocsin.Actor, year int, body []byte, notice, dryRun bool) (*Loaded, error) {
	if err := tocsin.AuthorizeCalendarLoad(a); err != nil {
		return nil, err
	}
	var y Year
	if notice {
		parsed, err := ParseNotice(string(body))
		if err != nil {
			return nil, calendarError(err)
		}
		y = *parsed
	} else {
		parsed, err := ParseYear(body)
		if err != nil {
			return nil, calendarError(err)
		}
		y = parsed
	}
	if y.Year != year {
		return nil, tocsin.Errorf(tocsin.CodeValidation, "the schedule is for %d, not %d", y.Year, year).With("field", "year")
	}
	changes, err := Changes(y, b.Calendar)
	if err != nil {
		return nil, calendarError(err)
	}
	out := &Loaded{Year: y, Changes: changes, DryRun: dryRun}
	if dryRun {
		return out, nil
	}
	data, err := EncodeYear(y)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("calendar directory: %w", err)
	}
	path := filepath.Join(b.Dir, strconv.Itoa(year)+".json")
	previous, readErr := os.ReadFile(path)
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return nil, fmt.Errorf("calendar %d: %w", year, err)
	}
	if err := b.Calendar.Add(y); err != nil {
		// Checked above; only a concurrent load of an adjoining year gets
		// here. Put the file back as it was, so the next start agrees.
		if readErr == nil {
			_ = atomicfile.Write(path, previous, 0o644)
		} else {
			_ = os.Remove(path)
		}
		return nil, calendarError(err)
	}
	source := y.Notice
	if y.Source != nil {
		source = y.Source.Title
		if y.Source.Number != "" {
			source += " (" + y.Source.Number + ")"
		}
	}
	if err := b.Service.RecordCalendarLoad(ctx, a, year, source); err != nil {
		return out, err
	}
	return out, nil
}

// Open adds the years loaded at run time before, from Dir, to the
// calendar: they outrank the embedded and --calendars files. A file that
// fails its checks stops the start, naming it.
func (b *Book) Open() error {
	if _, err := os.Stat(b.Dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	years, err := readYears(os.DirFS(b.Dir), ".", b.Dir)
	if err != nil {
		return err
	}
	for _, y := range years {
		if err := b.Calendar.Add(y); err != nil {
			return fmt.Errorf("calendar: %s: %w", filepath.Join(b.Dir, strconv.Itoa(y.Year)+".json"), err)
		}
	}
	return nil
}

// YearInfo describes a loaded year for the API.
type YearInfo struct {
	Year   int
	Notice string
	Source *Source
	// Origin is "loaded" for a year loaded at run time (its file is in
	// Dir), else "shipped" (embedded or --calendars).
	Origin   string
	LoadedAt *tocsin.AuditEntry
}

// Years lists the loaded years with where they came from, and when and by
// whom each loaded at run time was.
func (b *Book) Years(ctx context.Context) ([]YearInfo, error) {
	years := b.Calendar.Years()
	loads, err := b.Service.CalendarLoads(ctx, years)
	if err != nil {
		return nil, err
	}
	out := make([]YearInfo, 0, len(years))
	for _, n := range years {
		y, _ := b.Calendar.File(n)
		info := YearInfo{Year: n, Notice: y.Notice, Source: y.Source, Origin: "shipped"}
		if _, err := os.Stat(filepath.Join(b.Dir, strconv.Itoa(n)+".json")); err == nil {
			info.Origin = "loaded"
		}
		if e, ok := loads[n]; ok {
			info.LoadedAt = &e
		}
		out = append(out, info)
	}
	return out, nil
}

// calendarError turns the calendar's own errors into the domain's, with
// what the user needs to mend the text.
func calendarError(err error) error {
	var notice *NoticeError
	var check *CheckError
	switch {
	case errors.As(err, &notice):
		e := tocsin.Errorf(tocsin.CodeValidation, "%s", notice.Error()).With("reason", notice.Reason)
		if notice.Sentence != "" {
			e = e.With("sentence", notice.Sentence)
		}
		e.Err = err
		return e
	case errors.As(err, &check):
		violations := make([]map[string]string, len(check.Violations))
		for i, v := range check.Violations {
			violations[i] = map[string]string{"rule": string(v.Rule), "field": v.Field, "date": v.Date, "message": v.Message}
		}
		e := tocsin.Errorf(tocsin.CodeValidation, "%s", check.Error()).With("violations", violations)
		e.Err = err
		return e
	}
	return tocsin.Errorf(tocsin.CodeValidation, "%s", err.Error())
}
