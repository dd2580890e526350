package calendar

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	lunar "github.com/6tail/lunar-go/calendar"
)

// Rule names one check that a year's schedule must pass before a Calendar
// uses it. The values are stable: the API reports them to clients.
type Rule string

// The rules Check applies.
const (
	RuleYear          Rule = "year"           // the year is missing, out of range, or one whose statutory holidays Tocsin does not know
	RuleText          Rule = "text"           // a name, title or source is blank or not one line
	RuleSource        Rule = "source"         // the notice's document number or date is malformed
	RuleDate          Rule = "date"           // a date is malformed, or neither in the year nor adjoining it
	RuleRange         Rule = "range"          // a run of days off ends before it starts
	RuleDuplicate     Rule = "duplicate"      // a date is listed twice
	RuleMakeUpWeekend Rule = "makeup_weekend" // a make-up working day is not a Saturday or Sunday
	RuleMakeUpDayOff  Rule = "makeup_day_off" // a make-up working day is also a day off
	RuleMakeUpFor     Rule = "makeup_for"     // a make-up working day compensates no holiday of the file
	RuleHolidayName   Rule = "holiday_name"   // a holiday name that is not one of the statutory holidays
	RuleStatutory     Rule = "statutory"      // a statutory day off (全国年节及纪念日放假办法) is not a day off of its holiday
	RuleContiguous    Rule = "contiguous"     // a working day inside a holiday's stretch of days off
)

// Violation is one broken rule.
type Violation struct {
	Rule    Rule
	Field   string // where in the file, e.g. "workdays[0].date" or "holidays[1] (春节)"; empty for the year as a whole
	Date    string // the date concerned (YYYY-MM-DD), or empty
	Message string // the whole explanation, naming the date and the rule
}

func (v Violation) String() string {
	if v.Field == "" {
		return v.Message
	}
	return v.Field + ": " + v.Message
}

// CheckError lists every rule a year's schedule breaks. It is returned by
// Check, ParseYear, New, Load, (*Calendar).Add and Import.
type CheckError struct {
	Year       int
	Violations []Violation // in file order, then the statutory and contiguity checks by date
}

func (e *CheckError) Error() string {
	var b strings.Builder
	if e.Year != 0 {
		fmt.Fprintf(&b, "year %d: ", e.Year)
	} else {
		b.WriteString("year: ")
	}
	if len(e.Violations) == 1 {
		b.WriteString(e.Violations[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "%d problems:", len(e.Violations))
	for _, v := range e.Violations {
		b.WriteString("\n  - ")
		b.WriteString(v.String())
	}
	return b.String()
}

// adjoiningDays is how far outside its year a file's dates may lie. A
// notice schedules New Year's Day of its year, whose days off and make-up
// working day can fall in the last days of the year before (the 2019 notice
// has 2018-12-29 to 2018-12-31, the 2023 notice 2022-12-31); a week covers
// every notice since the holidays were introduced, and anything further
// away is a typo.
const adjoiningDays = 7

// holidayNames are the statutory holidays of 《全国年节及纪念日放假办法》
// art. 2 that the notices schedule, with their English names.
var holidayNames = map[string]string{
	"元旦":  "New Year's Day",
	"春节":  "Spring Festival",
	"清明节": "Qingming Festival",
	"劳动节": "Labour Day",
	"端午节": "Dragon Boat Festival",
	"中秋节": "Mid-Autumn Festival",
	"国庆节": "National Day",
}

// EnglishName returns the English name of a holiday name as the notices
// write it: one statutory holiday, or several joined by 、 (中秋节、国庆节).
// It reports false for any other name.
func EnglishName(name string) (string, bool) {
	parts, ok := splitHolidayName(name)
	if !ok {
		return "", false
	}
	en := make([]string, len(parts))
	for i, p := range parts {
		en[i] = holidayNames[p]
	}
	return strings.Join(en, " and "), true
}

// splitHolidayName splits a combined name into its statutory holidays.
func splitHolidayName(name string) ([]string, bool) {
	parts := strings.Split(name, "、")
	seen := make(map[string]bool, len(parts))
	for _, p := range parts {
		if _, ok := holidayNames[p]; !ok || seen[p] {
			return nil, false
		}
		seen[p] = true
	}
	return parts, true
}

// statutoryDay is one day off that the law itself fixes.
type statutoryDay struct {
	date    time.Time
	holiday string // key of holidayNames
	what    string // which day, e.g. "农历正月初一"
}

// Years of the versions of 《全国年节及纪念日放假办法》 whose rules Tocsin
// applies: the 2013 revision (State Council decree 644, in force from
// 2014-01-01) and the 2024 revision (decree 795, in force from 2025-01-01).
// Earlier versions are not encoded, so years before 2014 are refused rather
// than checked against the wrong law.
const (
	firstCheckedYear = 2014
	revision2024Year = 2025
)

// statutoryDays returns the days off the law fixes in year, in date order:
//
//	2014-2024: 元旦 1 Jan; 春节 正月初一 to 初三; 清明节 the Qingming solar
//	           term; 劳动节 1 May; 端午节 五月初五; 中秋节 八月十五; 国庆节 1-3 Oct.
//	from 2025: as above, but 春节 from 除夕 (the last day of the twelfth
//	           lunar month) to 初三, and 劳动节 1-2 May.
//
// Lunar dates and the solar term come from github.com/6tail/lunar-go, in
// China Standard Time.
func statutoryDays(year int) []statutoryDay {
	if v, ok := statutoryCache.Load(year); ok {
		return v.([]statutoryDay)
	}
	days := computeStatutoryDays(year)
	statutoryCache.Store(year, days)
	return days
}

// statutoryCache holds statutoryDays by year: the astronomy behind the
// lunar dates and solar terms costs about a third of a millisecond a year,
// which every Check would otherwise pay again. Entries are never modified.
var statutoryCache sync.Map // int -> []statutoryDay

func computeStatutoryDays(year int) []statutoryDay {
	d := func(m time.Month, day int) time.Time { return time.Date(year, m, day, 0, 0, 0, 0, Shanghai) }
	fromSolar := func(s *lunar.Solar) time.Time {
		return time.Date(s.GetYear(), time.Month(s.GetMonth()), s.GetDay(), 0, 0, 0, 0, Shanghai)
	}
	newYear := fromSolar(lunar.NewLunarFromYmd(year, 1, 1).GetSolar())
	out := []statutoryDay{{d(time.January, 1), "元旦", "1月1日"}}
	if year >= revision2024Year {
		out = append(out, statutoryDay{newYear.AddDate(0, 0, -1), "春节", "农历除夕"})
	}
	for i, name := range []string{"农历正月初一", "农历正月初二", "农历正月初三"} {
		out = append(out, statutoryDay{newYear.AddDate(0, 0, i), "春节", name})
	}
	qm := lunar.NewSolarFromYmd(year, 4, 1).GetLunar().GetJieQiTable()["清明"]
	out = append(out, statutoryDay{fromSolar(qm), "清明节", "清明节气"})
	out = append(out, statutoryDay{d(time.May, 1), "劳动节", "5月1日"})
	if year >= revision2024Year {
		out = append(out, statutoryDay{d(time.May, 2), "劳动节", "5月2日"})
	}
	out = append(out,
		statutoryDay{fromSolar(lunar.NewLunarFromYmd(year, 5, 5).GetSolar()), "端午节", "农历五月初五"},
		statutoryDay{fromSolar(lunar.NewLunarFromYmd(year, 8, 15).GetSolar()), "中秋节", "农历八月十五"},
	)
	for i := 0; i < 3; i++ {
		out = append(out, statutoryDay{d(time.October, 1+i), "国庆节", fmt.Sprintf("10月%d日", 1+i)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].date.Before(out[j].date) })
	return out
}

// lawName is how violations cite the law, with the version in force.
func lawName(year int) string {
	if year >= revision2024Year {
		return "《全国年节及纪念日放假办法》 as amended in 2024"
	}
	return "《全国年节及纪念日放假办法》 as amended in 2013"
}

var docNumber = regexp.MustCompile(`^国办发明电〔\d{4}〕\d+号$`)

// Check reports every rule y breaks, as a *CheckError, or nil:
//
//   - the year is in range and one whose statutory holidays are known
//     (2014 on); names, the title and sources are one-line text;
//   - every date is a valid YYYY-MM-DD, in the year or within a week of it
//     (New Year's Day can start in the last days of the year before), and
//     every run of days off has at least one day in the year;
//   - no date is listed twice; make-up working days are Saturdays or
//     Sundays, are not days off, and compensate a holiday of the file;
//   - every holiday is a statutory one (or several joined by 、), and the
//     days off of each contain its statutory days under
//     《全国年节及纪念日放假办法》, with lunar dates and the Qingming solar
//     term computed by github.com/6tail/lunar-go;
//   - a holiday's days off, with the weekend days between them, form one
//     unbroken stretch: no working day inside it.
//
// The same checks run for embedded files, files an operator writes by hand,
// and notices imported at run time.
func Check(y Year) error {
	_, vs := check(y)
	if len(vs) > 0 {
		return &CheckError{Year: y.Year, Violations: vs}
	}
	return nil
}

// check returns y's dates if it passes, and its violations.
func check(y Year) (*parsedYear, []Violation) {
	var vs []Violation
	add := func(rule Rule, field, date, format string, args ...any) {
		vs = append(vs, Violation{Rule: rule, Field: field, Date: date, Message: fmt.Sprintf(format, args...)})
	}
	if y.Year < minYear || y.Year > maxYear {
		add(RuleYear, "year", "", "%d is missing or out of range (%d to %d)", y.Year, minYear, maxYear)
		return nil, vs
	}
	lawKnown := y.Year >= firstCheckedYear
	if !lawKnown {
		add(RuleYear, "year", "", "%d is before %d: Tocsin knows the statutory holidays of 《全国年节及纪念日放假办法》 only from its 2013 revision on, so it cannot check this year",
			y.Year, firstCheckedYear)
	}
	if err := checkText(y.Notice); err != nil {
		add(RuleText, "notice", "", "%v", err)
	}
	for i, s := range y.Sources {
		if err := checkText(s); err != nil {
			add(RuleText, fmt.Sprintf("sources[%d]", i), "", "%v", err)
		}
	}
	if s := y.Source; s != nil {
		if err := checkText(s.Title); err != nil {
			add(RuleText, "source.title", "", "%v", err)
		}
		if s.Number != "" && !docNumber.MatchString(s.Number) {
			add(RuleSource, "source.number", "", "%q is not a document number of the form 国办发明电〔YYYY〕N号", s.Number)
		}
		if s.Date != "" {
			d, err := time.ParseInLocation(dateLayout, s.Date, Shanghai)
			switch {
			case err != nil || d.Format(dateLayout) != s.Date:
				add(RuleSource, "source.date", s.Date, "%q is not a valid date (YYYY-MM-DD)", s.Date)
			case d.Year() != y.Year && d.Year() != y.Year-1:
				// Notices appear in the autumn before their year; amendments
				// (2019's Labour Day, 2020's Spring Festival) within it.
				add(RuleSource, "source.date", s.Date, "%s is neither in %d nor in the year before", s.Date, y.Year)
			}
		}
	}

	first := time.Date(y.Year, time.January, 1, 0, 0, 0, 0, Shanghai)
	last := time.Date(y.Year, time.December, 31, 0, 0, 0, 0, Shanghai)
	lo, hi := first.AddDate(0, 0, -adjoiningDays), last.AddDate(0, 0, adjoiningDays)
	parseDate := func(field, s string) (time.Time, bool) {
		d, err := time.ParseInLocation(dateLayout, s, Shanghai)
		if err != nil || d.Format(dateLayout) != s {
			add(RuleDate, field, s, "%q is not a valid date (YYYY-MM-DD)", s)
			return time.Time{}, false
		}
		if d.Before(lo) || d.After(hi) {
			add(RuleDate, field, s, "%s is not in year %d nor within %d days of it", s, y.Year, adjoiningDays)
			return time.Time{}, false
		}
		return d, true
	}

	p := &parsedYear{nameEN: make(map[string]string)}
	owner := make(map[string]string) // date -> field that claimed it
	offName := make(map[string]string)
	names := make(map[string]bool)
	for i, h := range y.Holidays {
		field := fmt.Sprintf("holidays[%d]", i)
		nameOK := true
		if err := checkText(h.Name); err != nil {
			add(RuleText, field+".name", "", "%v", err)
			nameOK = false
		} else {
			names[h.Name] = true
			field += " (" + h.Name + ")"
			if lawKnown {
				if _, ok := splitHolidayName(h.Name); !ok {
					add(RuleHolidayName, field+".name", "", "%q is not a statutory holiday (元旦, 春节, 清明节, 劳动节, 端午节, 中秋节, 国庆节, or several of them joined by 、)", h.Name)
				}
			}
		}
		if h.NameEN != "" {
			if err := checkText(h.NameEN); err != nil {
				add(RuleText, field+".name_en", "", "%v", err)
			}
		}
		from, okFrom := parseDate(field+".from", h.From)
		to, okTo := parseDate(field+".to", h.To)
		if !okFrom || !okTo {
			continue
		}
		if to.Before(from) {
			add(RuleRange, field, h.From, "from %s is after to %s", h.From, h.To)
			continue
		}
		if to.Before(first) || from.After(last) {
			add(RuleDate, field, h.From, "%s to %s has no day in year %d", h.From, h.To, y.Year)
			continue
		}
		for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
			ds := d.Format(dateLayout)
			if prev, ok := owner[ds]; ok {
				add(RuleDuplicate, field, ds, "%s is already a holiday in %s", ds, prev)
				continue
			}
			owner[ds] = field
			if nameOK {
				offName[ds] = h.Name
			}
		}
		p.holidays = append(p.holidays, parsedHoliday{name: h.Name, nameEN: h.NameEN, from: from, to: to})
		if _, ok := p.nameEN[h.Name]; !ok && h.NameEN != "" {
			p.nameEN[h.Name] = h.NameEN
		}
	}
	makeUp := make(map[string]bool)
	for i, m := range y.Workdays {
		field := fmt.Sprintf("workdays[%d]", i)
		if err := checkText(m.For); err != nil {
			add(RuleText, field+".for", "", "%v", err)
		} else if !names[m.For] {
			add(RuleMakeUpFor, field+".for", m.Date, "%q is not the name of a holiday in this file", m.For)
		}
		d, ok := parseDate(field+".date", m.Date)
		if !ok {
			continue
		}
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			add(RuleMakeUpWeekend, field+".date", m.Date, "%s is a %s; a make-up working day must be a Saturday or Sunday", m.Date, wd)
			continue
		}
		if prev, ok := owner[m.Date]; ok {
			if strings.HasPrefix(prev, "holidays[") {
				add(RuleMakeUpDayOff, field+".date", m.Date, "%s is both a make-up working day and a holiday in %s", m.Date, prev)
			} else {
				add(RuleDuplicate, field+".date", m.Date, "%s is already listed in %s", m.Date, prev)
			}
			continue
		}
		owner[m.Date] = field
		makeUp[m.Date] = true
		p.makeup = append(p.makeup, parsedMakeUp{date: d, forName: m.For})
	}
	if !lawKnown {
		return nil, vs
	}

	// The law: each statutory day is a day off of a holiday naming it.
	for _, s := range statutoryDays(y.Year) {
		ds := s.date.Format(dateLayout)
		label := fmt.Sprintf("%s (%s, %s)", ds, s.holiday, s.what)
		name, off := offName[ds]
		switch {
		case !off && owner[ds] != "":
			// Listed, but under a field already reported as broken.
		case !off:
			add(RuleStatutory, "holidays", ds, "%s is a statutory day off under %s but is not a day off", label, lawName(y.Year))
		default:
			parts, _ := splitHolidayName(name)
			if !containsString(parts, s.holiday) {
				add(RuleStatutory, "holidays", ds, "%s is a statutory day off of %s under %s but is a day off of %s", label, s.holiday, lawName(y.Year), name)
			}
		}
	}

	// Contiguity: from a holiday's first day off to its last, every other
	// day is a weekend day that is not worked.
	type stretch struct{ first, last time.Time }
	stretches := make(map[string]*stretch)
	var order []string
	for _, h := range p.holidays {
		s, ok := stretches[h.name]
		if !ok {
			stretches[h.name] = &stretch{h.from, h.to}
			order = append(order, h.name)
			continue
		}
		if h.from.Before(s.first) {
			s.first = h.from
		}
		if h.to.After(s.last) {
			s.last = h.to
		}
	}
	for _, name := range order {
		s := stretches[name]
		for d := s.first; !d.After(s.last); d = d.AddDate(0, 0, 1) {
			ds := d.Format(dateLayout)
			if offName[ds] == name {
				continue
			}
			wd := d.Weekday()
			weekend := wd == time.Saturday || wd == time.Sunday
			if weekend && !makeUp[ds] {
				continue
			}
			why := "a " + wd.String()
			switch {
			case makeUp[ds]:
				why = "a make-up working day"
			case offName[ds] != "":
				why = "a day off of " + offName[ds]
			}
			add(RuleContiguous, "holidays ("+name+")", ds,
				"%s lies inside the days off of %s (%s to %s) but is %s: a holiday's days off and the weekend days between them must form one unbroken stretch",
				ds, name, s.first.Format(dateLayout), s.last.Format(dateLayout), why)
		}
	}
	if len(vs) > 0 {
		return nil, vs
	}
	return p, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
