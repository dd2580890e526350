package calendar_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/6tail/lunar-go/HolidayUtil"

	"github.com/tocsin-dev/tocsin/internal/calendar"
)

func readNotice(t testing.TB, year int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "notices", fmt.Sprintf("%d.txt", year)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// schedule is a year's days off and make-up days as sorted date lists.
type schedule struct{ off, work []string }

func scheduleOf(y *calendar.Year) schedule {
	var s schedule
	for _, h := range y.Holidays {
		eachDate(h.From, h.To, func(d string) { s.off = append(s.off, d) })
	}
	for _, w := range y.Workdays {
		s.work = append(s.work, w.Date)
	}
	sort.Strings(s.off)
	sort.Strings(s.work)
	return s
}

func eachDate(from, to string, f func(string)) {
	for d := mustDate(from); !d.After(mustDate(to)); d = d.AddDate(0, 0, 1) {
		f(d.Format("2006-01-02"))
	}
}

// lunarGoSchedule is the schedule of year as 6tail/lunar-go's holiday table
// records it: an independent transcription, including later amendments.
func lunarGoSchedule(year int) schedule {
	var s schedule
	for _, y := range []int{year - 1, year} {
		for e := HolidayUtil.GetHolidaysByYear(y).Front(); e != nil; e = e.Next() {
			h := e.Value.(*HolidayUtil.Holiday)
			if !strings.HasPrefix(h.GetTarget(), fmt.Sprint(year)) {
				continue
			}
			if h.IsWork() {
				s.work = append(s.work, h.GetDay())
			} else {
				s.off = append(s.off, h.GetDay())
			}
		}
	}
	sort.Strings(s.off)
	sort.Strings(s.work)
	return s
}

// Each notice reproduces the official schedule exactly: the shipped file
// where there is one (names, English names, runs and make-up days), and
// lunar-go's table for every year (dates), less the amendments of 2019 and
// 2020 that came in later notices.
func TestParseNoticeFixtures(t *testing.T) {
	type amend struct{ addOff, dropOff, addWork, dropWork []string }
	amended := map[int]amend{
		// 国务院办公厅关于调整2019年劳动节假期安排的通知 (March 2019).
		2019: {addOff: []string{"2019-05-02", "2019-05-03"}, addWork: []string{"2019-04-28", "2019-05-05"}},
		// Spring Festival 2020 extended to 2 February (COVID-19).
		2020: {addOff: []string{"2020-01-31"}, dropWork: []string{"2020-02-01"}},
	}
	sources := map[int]calendar.Source{
		2019: {Date: "2018-12-06"},
		2020: {Date: "2019-11-21"},
		2021: {Number: "国办发明电〔2020〕27号", Date: "2020-11-25"},
		2022: {Date: "2021-10-25"},
		2023: {Number: "国办发明电〔2022〕16号", Date: "2022-12-08"},
		2024: {Number: "国办发明电〔2023〕7号", Date: "2023-10-25"},
		2025: {Number: "国办发明电〔2024〕12号", Date: "2024-11-12"},
		2026: {Date: "2025-11-04"},
	}
	for year := 2019; year <= 2026; year++ {
		t.Run(fmt.Sprint(year), func(t *testing.T) {
			y, err := calendar.ParseNotice(readNotice(t, year))
			if err != nil {
				t.Fatalf("ParseNotice: %v", err)
			}
			title := fmt.Sprintf("国务院办公厅关于%d年部分节假日安排的通知", year)
			want := sources[year]
			want.Title = title
			if y.Year != year || y.Notice != title || y.Source == nil || *y.Source != want {
				t.Errorf("year %d, notice %q, source %+v; want %d, %q, %+v", y.Year, y.Notice, y.Source, year, title, want)
			}
			if err := calendar.Check(*y); err != nil {
				t.Errorf("Check: %v", err)
			}
			if _, err := os.Stat(filepath.Join("..", "..", "calendars", "cn", fmt.Sprintf("%d.json", year))); err == nil {
				shipped := yearFromFile(t, year)
				if !reflect.DeepEqual(y.Holidays, shipped.Holidays) {
					t.Errorf("holidays differ from calendars/cn/%d.json:\n got %+v\nwant %+v", year, y.Holidays, shipped.Holidays)
				}
				if !reflect.DeepEqual(y.Workdays, shipped.Workdays) {
					t.Errorf("workdays differ from calendars/cn/%d.json:\n got %+v\nwant %+v", year, y.Workdays, shipped.Workdays)
				}
			}
			// lunar-go counts the weekend of a 与周末连休 as days off; the
			// calendar files list only the days the notice gives. Compare
			// what matters, the working days: weekend days off drop out.
			got := withoutWeekends(scheduleOf(y))
			ref := withoutWeekends(lunarGoSchedule(year))
			if a, ok := amended[year]; ok {
				got.off = applyDiff(got.off, a.addOff, a.dropOff)
				got.work = applyDiff(got.work, a.addWork, a.dropWork)
			}
			if !reflect.DeepEqual(got, ref) {
				t.Errorf("schedule differs from lunar-go's table:\n got %v\nwant %v", got, ref)
			}
		})
	}
}

func withoutWeekends(s schedule) schedule {
	var off []string
	for _, d := range s.off {
		if wd := mustDate(d).Weekday(); wd != time.Saturday && wd != time.Sunday {
			off = append(off, d)
		}
	}
	s.off = off
	return s
}

func applyDiff(list, add, drop []string) []string {
	out := append([]string(nil), add...)
	for _, d := range list {
		if !containsStr(drop, d) {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Details of the fixtures: cross-year runs, 补休, notes, dates that are
// not days off.
func TestParseNoticeDetails(t *testing.T) {
	y, err := calendar.ParseNotice(readNotice(t, 2019))
	if err != nil {
		t.Fatal(err)
	}
	if h := y.Holidays[0]; h.From != "2018-12-30" || h.To != "2019-01-01" || h.Name != "元旦" {
		t.Errorf("2019 New Year = %+v", h)
	}
	if w := y.Workdays[0]; w.Date != "2018-12-29" || w.For != "元旦" {
		t.Errorf("2019 first make-up day = %+v", w)
	}
	y, err = calendar.ParseNotice(readNotice(t, 2024))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range y.Holidays {
		if h.From <= "2024-02-09" && "2024-02-09" <= h.To {
			t.Errorf("2024-02-09 (New Year's Eve, encouraged rest) became a day off: %+v", h)
		}
	}
	y, err = calendar.ParseNotice(readNotice(t, 2020))
	if err != nil {
		t.Fatal(err)
	}
	if h := y.Holidays[5]; h.Name != "国庆节、中秋节" || h.NameEN != "National Day and Mid-Autumn Festival" {
		t.Errorf("2020 combined holiday = %+v", h)
	}
}

// Parsed files survive their own JSON round trip.
func TestParseNoticeRoundTrip(t *testing.T) {
	for year := 2019; year <= 2026; year++ {
		y, err := calendar.ParseNotice(readNotice(t, year))
		if err != nil {
			t.Fatal(err)
		}
		data, err := calendar.EncodeYear(*y)
		if err != nil {
			t.Fatal(err)
		}
		back, err := calendar.ParseYear(data)
		if err != nil {
			t.Fatalf("%d: re-reading the encoded file: %v\n%s", year, err, data)
		}
		if !reflect.DeepEqual(back, *y) {
			t.Errorf("%d: round trip changed the file:\n%+v\n%+v", year, back, *y)
		}
		var generic map[string]any
		if err := json.Unmarshal(data, &generic); err != nil || generic["source"] == nil {
			t.Errorf("%d: encoded file has no source: %s", year, data)
		}
	}
}

// Short notices built around one item, for the shapes and refusals.
func notice(year int, items ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "国务院办公厅关于%d年部分节假日安排的通知\n各省、自治区、直辖市人民政府，国务院各部委、各直属机构：\n经国务院批准，现将%d年元旦、春节、清明节、劳动节、端午节、中秋节和国庆节放假调休日期的具体安排通知如下。\n", year, year)
	for i, it := range items {
		fmt.Fprintf(&b, "%s、%s\n", []string{"一", "二", "三", "四", "五", "六", "七", "八"}[i], it)
	}
	b.WriteString("国务院办公厅\n")
	fmt.Fprintf(&b, "%d年11月1日\n", year-1)
	return b.String()
}

// lawful2026Items are the real 2026 items with one replaced.
func items2026(replace map[int]string) []string {
	items := []string{
		"元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。",
		"春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。2月14日（周六）、2月28日（周六）上班。",
		"清明节：4月4日（周六）至6日（周一）放假，共3天。",
		"劳动节：5月1日（周五）至5日（周二）放假调休，共5天。5月9日（周六）上班。",
		"端午节：6月19日（周五）至21日（周日）放假，共3天。",
		"中秋节：9月25日（周五）至27日（周日）放假，共3天。",
		"国庆节：10月1日（周四）至7日（周三）放假调休，共7天。9月20日（周日）、10月10日（周六）上班。",
	}
	for i, s := range replace {
		items[i] = s
	}
	return items
}

func TestParseNoticeShapes(t *testing.T) {
	tests := []struct {
		name    string
		replace map[int]string
		check   func(t *testing.T, y *calendar.Year)
	}{
		{"补休 is a day off", map[int]string{0: "元旦：1月1日放假，1月2日（星期五）补休。"}, func(t *testing.T, y *calendar.Year) {
			if h := y.Holidays[0]; h.From != "2026-01-01" || h.To != "2026-01-02" {
				t.Errorf("New Year = %+v", h)
			}
		}},
		{"不调休", map[int]string{0: "元旦：1月1日（周四）放假1天，不调休。"}, func(t *testing.T, y *calendar.Year) {
			if h := y.Holidays[0]; h.From != "2026-01-01" || h.To != "2026-01-01" {
				t.Errorf("New Year = %+v", h)
			}
		}},
		{"half-width and spaces", map[int]string{1: "春节 : 2月15日 ( 农历腊月二十八 , 周日 ) 至 23日(农历正月初七,周一)放假调休 , 共9天 . 2月14日(周六) , 2月28日(周六)上班 ."}, func(t *testing.T, y *calendar.Year) {
			if h := y.Holidays[1]; h.From != "2026-02-15" || h.To != "2026-02-23" || len(y.Workdays) != 6 {
				t.Errorf("Spring Festival = %+v, workdays %v", h, y.Workdays)
			}
		}},
		{"full-width digits", map[int]string{4: "端午节：６月１９日（周五）至２１日（周日）放假，共３天。"}, func(t *testing.T, y *calendar.Year) {
			if h := y.Holidays[4]; h.From != "2026-06-19" || h.To != "2026-06-21" {
				t.Errorf("Dragon Boat = %+v", h)
			}
		}},
		{"range across months", map[int]string{3: "劳动节：4月30日（星期四）至5月5日（星期二）放假调休，共6天。5月9日（星期六）上班。"}, func(t *testing.T, y *calendar.Year) {
			if h := y.Holidays[3]; h.From != "2026-04-30" || h.To != "2026-05-05" {
				t.Errorf("Labour Day = %+v", h)
			}
		}},
		{"a date that is not a day off", map[int]string{1: "春节：2月15日至23日放假调休，共9天。2月14日（周六）、2月28日（周六）上班。鼓励各单位安排职工在2月24日（周二）休息。"}, func(t *testing.T, y *calendar.Year) {
			if h := y.Holidays[1]; h.To != "2026-02-23" {
				t.Errorf("Spring Festival = %+v", h)
			}
		}},
		{"combined holiday", map[int]string{5: "中秋节、端午节：9月25日至27日放假，共3天。", 4: "端午节：6月19日至21日放假，共3天。"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y, err := calendar.ParseNotice(notice(2026, items2026(tt.replace)...))
			if tt.name == "combined holiday" {
				// 端午节 named twice: refused.
				var ne *calendar.NoticeError
				if !errors.As(err, &ne) || !strings.Contains(err.Error(), "端午节 has an item already") {
					t.Fatalf("err = %v, want a NoticeError about 端午节", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseNotice: %v", err)
			}
			tt.check(t, y)
		})
	}
	// A cross-year range with its years written (a New Year from 2030-12-31).
	y, err := calendar.ParseNotice(notice(2026, items2026(map[int]string{0: "元旦：2025年12月31日（星期三）至2026年1月1日（星期四）放假调休，共2天。"})...))
	if err != nil || y.Holidays[0].From != "2025-12-31" || y.Holidays[0].To != "2026-01-01" {
		t.Errorf("cross-year range = %+v, %v", y, err)
	}
}

// What the parser cannot place, or what the law forbids, is refused with
// the sentence and the reason.
func TestParseNoticeRefuses(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		notice   bool     // a *NoticeError (else a *CheckError)
		sentence string   // part of the quoted sentence
		want     []string // parts of the reason
	}{
		{"make-up day on a weekday", notice(2026, items2026(map[int]string{3: "劳动节：5月1日至5日放假调休，共5天。5月8日上班。"})...),
			true, "5月8日上班", []string{"2026-05-08", "Friday", "Saturday or Sunday"}},
		{"weekday annotation wrong", notice(2026, items2026(map[int]string{3: "劳动节：5月1日（周五）至5日（周二）放假调休，共5天。5月9日（周日）上班。"})...),
			true, "5月9日（周日）上班", []string{"2026-05-09", "Saturday", "周日"}},
		{"weekday annotation wrong, old style", notice(2026, items2026(map[int]string{2: "清明节：4月4日（星期五）至6日放假，共3天。"})...),
			true, "4月4日（星期五）", []string{"2026-04-04", "星期五"}},
		{"lunar annotation wrong", notice(2026, items2026(map[int]string{1: "春节：2月15日（农历除夕、周日）至23日放假调休，共9天。2月14日（周六）、2月28日（周六）上班。"})...),
			true, "农历除夕", []string{"2026-02-15", "农历腊月廿八", "not 农历除夕"}},
		{"count wrong", notice(2026, items2026(map[int]string{6: "国庆节：10月1日至7日放假调休，共8天。9月20日（周日）、10月10日（周六）上班。"})...),
			true, "共8天", []string{"共8天", "7 days"}},
		{"unknown holiday", notice(2026, append(items2026(nil), "圣诞节：12月25日放假，共1天。")...),
			true, "圣诞节", []string{"not a statutory holiday"}},
		{"range end before start", notice(2026, items2026(map[int]string{6: "国庆节：10月7日至1日放假调休，共7天。"})...),
			true, "10月7日至1日", []string{"before it starts"}},
		{"date without a month", notice(2026, items2026(map[int]string{4: "端午节：19日至21日放假，共3天。"})...),
			true, "19日至21日", []string{"no month"}},
		{"no such date", notice(2026, items2026(map[int]string{4: "端午节：6月31日放假。"})...),
			true, "6月31日", []string{"not a date"}},
		{"unreadable words", notice(2026, items2026(map[int]string{4: "端午节：6月19日至21日暂定放假，共3天。"})...),
			true, "暂定", []string{"cannot read"}},
		{"dates with no verb", notice(2026, items2026(map[int]string{4: "端午节：6月19日至21日放假，共3天，6月22日、6月23日上班或放假。"})...),
			true, "6月22日", []string{}},
		{"unknown annotation", notice(2026, items2026(map[int]string{4: "端午节：6月19日（暂定）至21日放假，共3天。"})...),
			true, "暂定", []string{"cannot read the note"}},
		{"item out of order", strings.Replace(notice(2026, items2026(nil)...), "三、清明节", "四、清明节", 1),
			true, "四、清明节", []string{"item 3"}},
		{"no title", strings.Replace(notice(2026, items2026(nil)...), "国务院办公厅关于2026年部分节假日安排的通知", "通知", 1),
			true, "", []string{"no title"}},
		{"year out of the adjoining range", notice(2026, items2026(map[int]string{0: "元旦：2024年12月31日至2026年1月1日放假。"})...),
			true, "2024年12月31日", []string{"2024"}},
		{"schedule outside an item", strings.Replace(notice(2026, items2026(nil)...), "通知如下。", "通知如下。另外12月31日放假。", 1),
			true, "12月31日放假", []string{"outside the numbered items"}},
		{"Spring Festival a week late", notice(2026, items2026(map[int]string{1: "春节：2月22日（周日）至3月2日（周一）放假调休，共9天。2月21日（周六）、3月7日（周六）上班。"})...),
			false, "", []string{"2026-02-16", "农历除夕", "statutory"}},
		{"missing statutory day", notice(2026, items2026(map[int]string{6: "国庆节：10月1日（周四）至2日（周五）放假，共2天。"})...),
			false, "", []string{"2026-10-03", "国庆节", "statutory"}},
		{"hole in a stretch", notice(2026, items2026(map[int]string{6: "国庆节：10月1日至4日放假调休，10月6日至7日补休。9月20日（周日）、10月10日（周六）上班。"})...),
			false, "", []string{"2026-10-05", "unbroken"}},
		{"missing holiday", notice(2026, items2026(nil)[:6]...),
			false, "", []string{"2026-10-01", "国庆节"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y, err := calendar.ParseNotice(tt.text)
			if err == nil {
				t.Fatalf("ParseNotice accepted it: %+v", y)
			}
			var ne *calendar.NoticeError
			var ce *calendar.CheckError
			switch {
			case tt.notice && !errors.As(err, &ne):
				t.Fatalf("err = %v (%T), want *NoticeError", err, err)
			case !tt.notice && !errors.As(err, &ce):
				t.Fatalf("err = %v (%T), want *CheckError", err, err)
			}
			if ne != nil && !strings.Contains(ne.Sentence, tt.sentence) {
				t.Errorf("quoted sentence %q does not contain %q", ne.Sentence, tt.sentence)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func mustDate(s string) time.Time {
	d, err := time.ParseInLocation("2006-01-02", s, calendar.Shanghai)
	if err != nil {
		panic(err)
	}
	return d
}
