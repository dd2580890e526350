package calendar

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	lunar "github.com/6tail/lunar-go/calendar"
)

// NoticeError reports a part of a notice that ParseNotice cannot place
// with certainty. It quotes the sentence as the notice writes it.
type NoticeError struct {
	Sentence string // the sentence, its runs of white space collapsed; empty when the fault is the whole text
	Reason   string
}

func (e *NoticeError) Error() string {
	if e.Sentence == "" {
		return "notice: " + e.Reason
	}
	return fmt.Sprintf("notice: %s, in 「%s」", e.Reason, e.Sentence)
}

// ParseNotice reads the State Council General Office's yearly notice
// 《国务院办公厅关于YYYY年部分节假日安排的通知》 as published (the plain
// text an operator pastes, full-width or half-width punctuation, with or
// without stray spaces and line breaks) and returns that year's calendar
// file, which passes Check.
//
// Only the sentences of the numbered items (一、元旦：…) that put dates
// with 放假 (days off), 补休 (a compensatory day off) or 上班 (make-up
// working days) schedule anything; a sentence naming a date without one of
// them (the 2024 notice's 除夕（2月9日）, a day to rest on but not a day
// off) schedules nothing. Dates without a year are in the notice's year;
// a range's end without a month is in its start's month. Weekday
// annotations （星期六） and （周六）, and lunar ones （农历除夕、周二）, are
// checked against the date; so are the counts 共N天 and 放假N天.
//
// A text it cannot place is a *NoticeError quoting the sentence; a notice
// it reads but whose schedule breaks a rule is a *CheckError.
func ParseNotice(text string) (*Year, error) {
	y, _, err := parseNotice(text)
	return y, err
}

// maxNoticeRunes bounds the text: a real notice is a page (about 1,500
// characters); anything far larger is not one.
const maxNoticeRunes = 64 << 10

// normText is a notice with white space removed and punctuation folded to
// one form, remembering where each rune came from so errors can quote the
// original.
type normText struct {
	orig []rune
	norm []rune
	pos  []int // pos[i] is the index in orig of norm[i]
}

// normalize folds full-width ASCII (digits, （）：，；) to half-width, the
// sentence ends 。．. to 。, and drops white space, which reprints insert
// anywhere (even inside a date).
func normalize(text string) *normText {
	t := &normText{orig: []rune(text)}
	for i, r := range t.orig {
		switch {
		case unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff':
			continue
		case r >= '\uff01' && r <= '\uff5e':
			r -= 0xfee0
		case r == '\uff64': // halfwidth ideographic comma
			r = '、'
		}
		switch r {
		case '.':
			r = '。'
		case '［', '【':
			r = '['
		case '］', '】':
			r = ']'
		}
		t.norm = append(t.norm, r)
		t.pos = append(t.pos, i)
	}
	return t
}

// quote returns the original text of norm[from:to], white space collapsed.
func (t *normText) quote(from, to int) string {
	if from >= to || from >= len(t.pos) {
		return ""
	}
	if to > len(t.pos) {
		to = len(t.pos)
	}
	return strings.Join(strings.Fields(string(t.orig[t.pos[from]:t.pos[to-1]+1])), " ")
}

var (
	reTitle     = regexp.MustCompile(`国务院办公厅关于(\d{4})年部分节假日安排的通知`)
	rePreamble  = regexp.MustCompile(`现将(\d{4})年`)
	reNumber    = regexp.MustCompile(`国办发明电[〔\[(](\d{4})[〕\])](\d{1,3})号`)
	reSignature = regexp.MustCompile(`国务院办公厅(\d{4})年(\d{1,2})月(\d{1,2})日`)
	reItem      = regexp.MustCompile(`(^|[。:])([一二三四五六七八九十]{1,3})、([\p{Han}、]{1,20}?):`)
	reAnyDate   = regexp.MustCompile(`\d{1,2}日`) // any written date: the items' dates all end in 日
	// reScheduled is a date written as the items write the dates they
	// schedule (followed, after its note, by 至, 、 or a verb), unlike the
	// dateline of a reprint (新华社北京11月4日电).
	reScheduled = regexp.MustCompile(`\d{1,2}月\d{1,2}日(?:\([^()]*\))?(?:至|、|放假|补休|上班)`)
	reDate      = regexp.MustCompile(`^(?:(\d{4})年)?(?:(\d{1,2})月)?(\d{1,2})日`)
	reAnnot     = regexp.MustCompile(`^\(([^()]{0,40})\)`)
	reCount     = regexp.MustCompile(`^共(\d{1,3})天`)
	reOffCount  = regexp.MustCompile(`^(\d{1,3})天`)
)

// runeIndex converts a byte offset in s to a rune offset.
func runeIndex(s string, byteOff int) int { return len([]rune(s[:byteOff])) }

// parseNotice is ParseNotice, also returning the sentences inside items
// that name a date but schedule nothing, for the operator to see.
func parseNotice(text string) (*Year, []string, error) {
	if strings.IndexByte(text, 0) >= 0 || !utf8.ValidString(text) {
		return nil, nil, &NoticeError{Reason: "the text is not UTF-8 plain text"}
	}
	t := normalize(text)
	if len(t.norm) > maxNoticeRunes {
		return nil, nil, &NoticeError{Reason: fmt.Sprintf("the text is %d characters long, too long for a notice", len(t.norm))}
	}
	s := string(t.norm)

	title := reTitle.FindStringSubmatchIndex(s)
	if title == nil {
		return nil, nil, &NoticeError{Reason: "no title 国务院办公厅关于YYYY年部分节假日安排的通知 found: paste the whole notice"}
	}
	year, _ := strconv.Atoi(s[title[2]:title[3]])
	if year < firstCheckedYear || year > maxYear {
		return nil, nil, &NoticeError{Sentence: t.quote(runeIndex(s, title[0]), runeIndex(s, title[1])),
			Reason: fmt.Sprintf("Tocsin reads the notices of %d on; this one is for %d", firstCheckedYear, year)}
	}
	if m := rePreamble.FindStringSubmatchIndex(s); m != nil {
		if py, _ := strconv.Atoi(s[m[2]:m[3]]); py != year {
			return nil, nil, &NoticeError{Sentence: t.sentenceAround(runeIndex(s, m[0])),
				Reason: fmt.Sprintf("the title is for %d but the preamble for %d", year, py)}
		}
	}
	src := &Source{Title: s[title[0]:title[1]]}
	if m := reNumber.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[2])
		src.Number = fmt.Sprintf("国办发明电〔%s〕%d号", m[1], n)
	}

	// The signature (国务院办公厅 and the date of issue) ends the text that
	// can hold items.
	end := len(s)
	if all := reSignature.FindAllStringSubmatchIndex(s, -1); all != nil {
		m := all[len(all)-1]
		yy, _ := strconv.Atoi(s[m[2]:m[3]])
		mm, _ := strconv.Atoi(s[m[4]:m[5]])
		dd, _ := strconv.Atoi(s[m[6]:m[7]])
		d := time.Date(yy, time.Month(mm), dd, 0, 0, 0, 0, Shanghai)
		if d.Year() != yy || int(d.Month()) != mm || d.Day() != dd {
			return nil, nil, &NoticeError{Sentence: t.quote(runeIndex(s, m[0]), runeIndex(s, m[1])),
				Reason: fmt.Sprintf("the date of issue %d年%d月%d日 does not exist", yy, mm, dd)}
		}
		src.Date = d.Format(dateLayout)
		end = m[0]
	}

	p := &noticeParser{t: t, year: year}
	items := reItem.FindAllStringSubmatchIndex(s[:end], -1)
	if len(items) == 0 {
		return nil, nil, &NoticeError{Reason: "no numbered items (一、元旦：…) found"}
	}
	// Before the first item: the salutation and preamble, which may speak
	// of holidays and day counts but must not schedule a date.
	first := runeIndex(s, items[0][4])
	if err := p.outside(0, first); err != nil {
		return nil, nil, err
	}
	seen := make(map[string]bool)
	for i, m := range items {
		start := runeIndex(s, m[4]) // the item number
		bodyStart := runeIndex(s, m[1])
		bodyEnd := runeIndex(s, end)
		if i+1 < len(items) {
			bodyEnd = runeIndex(s, items[i+1][4])
		}
		header := t.quote(start, bodyStart)
		if n := chineseNumber(s[m[4]:m[5]]); n != i+1 {
			return nil, nil, &NoticeError{Sentence: header, Reason: fmt.Sprintf("item %s comes where item %d was expected", s[m[4]:m[5]], i+1)}
		}
		name := s[m[6]:m[7]]
		parts, ok := splitHolidayName(name)
		if !ok {
			return nil, nil, &NoticeError{Sentence: header, Reason: fmt.Sprintf("%q is not a statutory holiday (元旦, 春节, 清明节, 劳动节, 端午节, 中秋节, 国庆节)", name)}
		}
		for _, part := range parts {
			if seen[part] {
				return nil, nil, &NoticeError{Sentence: header, Reason: fmt.Sprintf("%s has an item already", part)}
			}
			seen[part] = true
		}
		if err := p.item(name, start, bodyStart, bodyEnd); err != nil {
			return nil, nil, err
		}
	}

	y := &Year{
		Year:     year,
		Notice:   src.Title,
		Source:   src,
		Holidays: p.holidays,
		Workdays: p.workdays,
	}
	if y.Workdays == nil {
		y.Workdays = []MakeUpDay{}
	}
	if err := Check(*y); err != nil {
		return nil, nil, err
	}
	return y, p.ignored, nil
}

// chineseNumber reads 一 to 九十九; 0 if it is not one.
func chineseNumber(s string) int {
	digits := map[rune]int{'一': 1, '二': 2, '三': 3, '四': 4, '五': 5, '六': 6, '七': 7, '八': 8, '九': 9}
	r := []rune(s)
	switch {
	case len(r) == 1 && r[0] == '十':
		return 10
	case len(r) == 1:
		return digits[r[0]]
	case len(r) == 2 && r[0] == '十':
		return 10 + digits[r[1]]
	case len(r) == 2 && r[1] == '十' && digits[r[0]] > 0:
		return 10 * digits[r[0]]
	case len(r) == 3 && r[1] == '十' && digits[r[0]] > 0 && digits[r[2]] > 0:
		return 10*digits[r[0]] + digits[r[2]]
	}
	return 0
}

// sentenceAround quotes the sentence holding norm index i.
func (t *normText) sentenceAround(i int) string {
	from, to := i, i
	for from > 0 && t.norm[from-1] != '。' {
		from--
	}
	for to < len(t.norm) && t.norm[to] != '。' {
		to++
	}
	return t.quote(from, to)
}

type noticeParser struct {
	t        *normText
	year     int
	holidays []Holiday
	workdays []MakeUpDay
	claimed  map[string]bool // dates already scheduled
	ignored  []string
}

// sentences splits norm[from:to] at 。 into [start, end) ranges.
func (p *noticeParser) sentences(from, to int) [][2]int {
	var out [][2]int
	start := from
	for i := from; i < to; i++ {
		if p.t.norm[i] == '。' {
			if i > start {
				out = append(out, [2]int{start, i})
			}
			start = i + 1
		}
	}
	if to > start {
		out = append(out, [2]int{start, to})
	}
	return out
}

func hasVerb(s string) bool {
	return strings.Contains(s, "放假") || strings.Contains(s, "补休") || strings.Contains(s, "上班")
}

// outside checks text that is not an item: it may not schedule a date.
func (p *noticeParser) outside(from, to int) error {
	for _, r := range p.sentences(from, to) {
		s := string(p.t.norm[r[0]:r[1]])
		if reScheduled.MatchString(s) {
			return &NoticeError{Sentence: p.t.quote(r[0], r[1]), Reason: "a date to schedule outside the numbered items"}
		}
	}
	return nil
}

// span is a run of dates from a notice, both ends included.
type span struct{ from, to time.Time }

// item reads one numbered item's sentences.
func (p *noticeParser) item(name string, start, bodyStart, bodyEnd int) error {
	if p.claimed == nil {
		p.claimed = make(map[string]bool)
	}
	var off []span
	for k, r := range p.sentences(bodyStart, bodyEnd) {
		from := r[0]
		if k == 0 {
			from = start // quote the item's first sentence with its header
		}
		q := p.t.quote(from, r[1])
		s := string(p.t.norm[r[0]:r[1]])
		if !hasVerb(s) || !reAnyDate.MatchString(s) {
			if reAnyDate.MatchString(s) {
				p.ignored = append(p.ignored, q)
			}
			continue
		}
		sOff, sWork, err := p.sentence(s, q)
		if err != nil {
			return err
		}
		off = append(off, sOff...)
		for _, w := range sWork {
			for d := w.from; !d.After(w.to); d = d.AddDate(0, 0, 1) {
				ds := d.Format(dateLayout)
				if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
					return &NoticeError{Sentence: q, Reason: fmt.Sprintf("make-up working day (上班) %s is a %s, not a Saturday or Sunday", ds, wd)}
				}
				if p.claimed[ds] {
					return &NoticeError{Sentence: q, Reason: fmt.Sprintf("%s is scheduled twice", ds)}
				}
				p.claimed[ds] = true
				p.workdays = append(p.workdays, MakeUpDay{Date: ds, For: name})
			}
		}
	}
	if len(off) == 0 {
		return &NoticeError{Sentence: p.t.quote(start, bodyEnd), Reason: "the item gives no day off (放假)"}
	}
	// Days off in date order, adjacent runs merged into one entry.
	var days []time.Time
	for _, sp := range off {
		for d := sp.from; !d.After(sp.to); d = d.AddDate(0, 0, 1) {
			ds := d.Format(dateLayout)
			if p.claimed[ds] {
				return &NoticeError{Sentence: p.t.quote(start, bodyEnd), Reason: fmt.Sprintf("%s is scheduled twice", ds)}
			}
			p.claimed[ds] = true
			days = append(days, d)
		}
	}
	sortTimes(days)
	en, _ := EnglishName(name)
	runStart := days[0]
	for i := 1; i <= len(days); i++ {
		if i < len(days) && days[i].Equal(days[i-1].AddDate(0, 0, 1)) {
			continue
		}
		p.holidays = append(p.holidays, Holiday{Name: name, NameEN: en,
			From: runStart.Format(dateLayout), To: days[i-1].Format(dateLayout)})
		if i < len(days) {
			runStart = days[i]
		}
	}
	return nil
}

func sortTimes(ts []time.Time) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Before(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// sentence reads one scheduling sentence: dates, single or 至 ranges,
// listed with 、 or commas, each group closed by 放假, 补休 or 上班, with
// the counts 共N天 / 放假N天 and the phrases 与周末连休 and 不调休.
func (p *noticeParser) sentence(s, q string) (off, work []span, err error) {
	fail := func(format string, args ...any) ([]span, []span, error) {
		return nil, nil, &NoticeError{Sentence: q, Reason: fmt.Sprintf(format, args...)}
	}
	var pending []span
	rangeOpen := false // after 至, waiting for the end date
	lastWasDate := false
	sepPending := false // after 、, waiting for a date
	offDays := 0
	rest := s
	for rest != "" {
		if m := reDate.FindStringSubmatch(rest); m != nil {
			rest = rest[len(m[0]):]
			var annot string
			if a := reAnnot.FindStringSubmatch(rest); a != nil {
				annot = a[1]
				rest = rest[len(a[0]):]
			}
			var base *time.Time
			if rangeOpen {
				base = &pending[len(pending)-1].from
			}
			d, err := p.date(m, base)
			if err != nil {
				return fail("%v", err)
			}
			if err := checkAnnotation(d, annot); err != nil {
				return fail("%v", err)
			}
			if rangeOpen {
				sp := &pending[len(pending)-1]
				if d.Before(sp.from) {
					return fail("the range ends on %s, before it starts on %s", d.Format(dateLayout), sp.from.Format(dateLayout))
				}
				if d.Sub(sp.from) > 40*24*time.Hour {
					return fail("the range %s to %s is longer than any holiday", sp.from.Format(dateLayout), d.Format(dateLayout))
				}
				sp.to = d
				rangeOpen = false
				lastWasDate = false // a range cannot be extended
			} else {
				pending = append(pending, span{d, d})
				lastWasDate = true
			}
			sepPending = false
			continue
		}
		if sepPending || rangeOpen {
			return fail("%q stands where a date must follow 至 or 、", firstToken(rest))
		}
		switch {
		case strings.HasPrefix(rest, "至"):
			if !lastWasDate {
				return fail("至 does not follow a date")
			}
			rest = rest[len("至"):]
			rangeOpen = true
			lastWasDate = false
		case strings.HasPrefix(rest, "、"):
			if len(pending) == 0 {
				return fail("、 does not follow a date")
			}
			rest = rest[len("、"):]
			sepPending = true
		case strings.HasPrefix(rest, ","), strings.HasPrefix(rest, ";"):
			rest = rest[1:]
			lastWasDate = false
		case strings.HasPrefix(rest, "放假调休"), strings.HasPrefix(rest, "放假"), strings.HasPrefix(rest, "补休"):
			verb := "放假"
			switch {
			case strings.HasPrefix(rest, "放假调休"):
				verb = "放假调休"
			case strings.HasPrefix(rest, "补休"):
				verb = "补休"
			}
			rest = rest[len(verb):]
			if len(pending) == 0 {
				return fail("%s has no date", verb)
			}
			n := 0
			for _, sp := range pending {
				n += int(sp.to.Sub(sp.from).Hours()/24+0.5) + 1
			}
			offDays += n
			off = append(off, pending...)
			pending = nil
			lastWasDate = false
			if c := reOffCount.FindStringSubmatch(rest); c != nil && verb != "补休" {
				rest = rest[len(c[0]):]
				if want, _ := strconv.Atoi(c[1]); want != n {
					return fail("it says %s%s天 but gives %d days", verb, c[1], n)
				}
			}
		case strings.HasPrefix(rest, "上班"):
			rest = rest[len("上班"):]
			if len(pending) == 0 {
				return fail("上班 has no date")
			}
			work = append(work, pending...)
			pending = nil
			lastWasDate = false
		case reCount.MatchString(rest):
			c := reCount.FindStringSubmatch(rest)
			rest = rest[len(c[0]):]
			if want, _ := strconv.Atoi(c[1]); want != offDays {
				return fail("it says 共%s天 but gives %d days off", c[1], offDays)
			}
			lastWasDate = false
		case strings.HasPrefix(rest, "与周末连休"):
			rest = rest[len("与周末连休"):]
			lastWasDate = false
		case strings.HasPrefix(rest, "不调休"):
			rest = rest[len("不调休"):]
			lastWasDate = false
		default:
			return fail("cannot read %q", firstToken(rest))
		}
	}
	if rangeOpen || sepPending {
		return fail("the sentence ends before its last date")
	}
	if len(pending) > 0 {
		return fail("dates with no 放假, 补休 or 上班")
	}
	return off, work, nil
}

// firstToken returns a short piece of rest to name in an error.
func firstToken(rest string) string {
	r := []rune(rest)
	n := 0
	for n < len(r) && n < 8 && r[n] != ',' && r[n] != '、' && r[n] != ';' {
		n++
	}
	if n == 0 && len(r) > 0 {
		n = 1
	}
	return string(r[:n])
}

// date resolves a matched date. base is the start of the range whose end
// this is, if any: the end takes its year and month when it omits them.
func (p *noticeParser) date(m []string, base *time.Time) (time.Time, error) {
	year, month := p.year, 0
	if base != nil {
		year, month = base.Year(), int(base.Month())
	}
	if m[1] != "" {
		year, _ = strconv.Atoi(m[1])
		if year < p.year-1 || year > p.year+1 {
			return time.Time{}, fmt.Errorf("the year %d is not %d nor adjoining it", year, p.year)
		}
		if m[2] == "" {
			return time.Time{}, fmt.Errorf("%s has a year but no month", m[0])
		}
	}
	if m[2] != "" {
		month, _ = strconv.Atoi(m[2])
	}
	if month == 0 {
		return time.Time{}, fmt.Errorf("%s has no month", m[0])
	}
	day, _ := strconv.Atoi(m[3])
	d := time.Date(year, time.Month(month), day, 0, 0, 0, 0, Shanghai)
	if month > 12 || d.Day() != day || int(d.Month()) != month {
		return time.Time{}, fmt.Errorf("%s is not a date", m[0])
	}
	return d, nil
}

var weekdayNames = map[string]time.Weekday{
	"一": time.Monday, "二": time.Tuesday, "三": time.Wednesday, "四": time.Thursday,
	"五": time.Friday, "六": time.Saturday, "日": time.Sunday, "天": time.Sunday,
}

// checkAnnotation checks the parenthesised note after a date: weekdays
// (星期六, 周六) and lunar dates (农历除夕, 农历正月初七), separated by 、 or
// commas. Anything else is an error: an unknown note might change what the
// date means.
func checkAnnotation(d time.Time, annot string) error {
	if annot == "" {
		return nil
	}
	ds := d.Format(dateLayout)
	for _, part := range strings.FieldsFunc(annot, func(r rune) bool { return r == '、' || r == ',' }) {
		var wd string
		for _, prefix := range []string{"星期", "礼拜", "周"} {
			if rest, ok := strings.CutPrefix(part, prefix); ok {
				wd = rest
				break
			}
		}
		if want, ok := weekdayNames[wd]; ok {
			if d.Weekday() != want {
				return fmt.Errorf("%s is a %s, not %s", ds, d.Weekday(), part)
			}
			continue
		}
		if spec, ok := strings.CutPrefix(part, "农历"); ok {
			if err := checkLunar(d, spec); err != nil {
				return err
			}
			continue
		}
		return fmt.Errorf("cannot read the note （%s） after %s", part, ds)
	}
	return nil
}

var lunarMonths = map[string]int{
	"正": 1, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
	"十": 10, "十一": 11, "冬": 11, "十二": 12, "腊": 12,
}

// checkLunar checks a lunar annotation: 除夕, or a month and day such as
// 正月初七, 腊月二十八, 八月十五, 闰四月初一.
func checkLunar(d time.Time, spec string) error {
	l := lunar.NewSolarFromYmd(d.Year(), int(d.Month()), d.Day()).GetLunar()
	actual := "农历" + l.GetMonthInChinese() + "月" + l.GetDayInChinese()
	ds := d.Format(dateLayout)
	if spec == "除夕" {
		next := d.AddDate(0, 0, 1)
		nl := lunar.NewSolarFromYmd(next.Year(), int(next.Month()), next.Day()).GetLunar()
		if nl.GetMonth() != 1 || nl.GetDay() != 1 {
			return fmt.Errorf("%s is %s, not 农历除夕", ds, actual)
		}
		return nil
	}
	leap := false
	if rest, ok := strings.CutPrefix(spec, "闰"); ok {
		leap, spec = true, rest
	}
	i := strings.Index(spec, "月")
	if i < 0 {
		return fmt.Errorf("cannot read the lunar date 农历%s after %s", spec, ds)
	}
	month, ok := lunarMonths[spec[:i]]
	day := lunarDay(spec[i+len("月"):])
	if !ok || day == 0 {
		return fmt.Errorf("cannot read the lunar date 农历%s after %s", spec, ds)
	}
	if leap {
		month = -month // lunar-go's leap months are negative
	}
	if l.GetMonth() != month || l.GetDay() != day {
		return fmt.Errorf("%s is %s, not 农历%s", ds, actual, map[bool]string{true: "闰", false: ""}[leap]+spec)
	}
	return nil
}

// lunarDay reads 初一 to 初十, 十一 to 十九, 二十, 廿一 (or 二十一) to 廿九,
// 三十; 0 if it is none of them.
func lunarDay(s string) int {
	digit := map[string]int{"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
	switch {
	case s == "初十":
		return 10
	case s == "二十":
		return 20
	case s == "三十":
		return 30
	case strings.HasPrefix(s, "初"):
		return digit[strings.TrimPrefix(s, "初")]
	case strings.HasPrefix(s, "十"):
		if n := digit[strings.TrimPrefix(s, "十")]; n > 0 {
			return 10 + n
		}
	case strings.HasPrefix(s, "廿"):
		if n := digit[strings.TrimPrefix(s, "廿")]; n > 0 {
			return 20 + n
		}
	case strings.HasPrefix(s, "二十"):
		if n := digit[strings.TrimPrefix(s, "二十")]; n > 0 {
			return 20 + n
		}
	}
	return 0
}
