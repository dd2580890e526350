package calendar_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/calendar"
)

// noticeSeeds are the fixtures, altered ones, and fragments: the corpus a
// plain `go test` runs.
func noticeSeeds(tb testing.TB) []string {
	var seeds []string
	for year := 2019; year <= 2026; year++ {
		b, err := os.ReadFile(filepath.Join("testdata", "notices", fmt.Sprintf("%d.txt", year)))
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, string(b))
	}
	n2026 := seeds[len(seeds)-1]
	seeds = append(seeds,
		strings.Replace(n2026, "5月9日(周六)上班", "5月8日上班", 1),
		strings.Replace(n2026, "至7日(周三)", "至2日(周五)", 1),
		strings.Replace(n2026, "农历腊月二十八", "农历除夕", 1),
		strings.Replace(n2026, "1月1日(周四)至3日(周六)", "2025年12月31日(周三)至2026年1月3日(周六)", 1),
		notice(2026, items2026(map[int]string{0: "元旦：1月1日放假，1月2日（星期五）补休。"})...),
		notice(2027, "元旦：1月1日（周五）放假1天，不调休。"),
		"国务院办公厅关于2026年部分节假日安排的通知\n一、元旦：1月1日至至3日放假。",
		"国务院办公厅关于2026年部分节假日安排的通知。一、元旦:1月1日(农历闰四月初一)放假",
		"",
	)
	return seeds
}

// FuzzParseNotice: never a panic; an error is a *NoticeError or a
// *CheckError and comes with no file; a file passes Check and survives its
// own JSON round trip.
func FuzzParseNotice(f *testing.F) {
	for _, s := range noticeSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		y, err := calendar.ParseNotice(text)
		if err != nil {
			var ne *calendar.NoticeError
			var ce *calendar.CheckError
			if !errors.As(err, &ne) && !errors.As(err, &ce) {
				t.Fatalf("error %v is %T, want *NoticeError or *CheckError", err, err)
			}
			if y != nil {
				t.Fatalf("file %+v returned with error %v", y, err)
			}
			return
		}
		if err := calendar.Check(*y); err != nil {
			t.Fatalf("parsed file fails Check: %v", err)
		}
		data, err := calendar.EncodeYear(*y)
		if err != nil {
			t.Fatal(err)
		}
		back, err := calendar.ParseYear(data)
		if err != nil {
			t.Fatalf("encoded file rejected: %v\n%s", err, data)
		}
		if !reflect.DeepEqual(back, *y) {
			t.Fatalf("round trip changed the file:\n%+v\n%+v", back, *y)
		}
		plain, err := json.Marshal(y)
		if err != nil {
			t.Fatal(err)
		}
		if back, err = calendar.ParseYear(plain); err != nil || !reflect.DeepEqual(back, *y) {
			t.Fatalf("json.Marshal round trip: %v\n%s", err, plain)
		}
	})
}

// FuzzCheck: Check never panics, is deterministic, returns only
// *CheckError, and what it accepts builds a calendar that agrees with the
// file and encodes back to the same file.
func FuzzCheck(f *testing.F) {
	for year := 2024; year <= 2026; year++ {
		data, err := os.ReadFile(filepath.Join("..", "..", "calendars", "cn", fmt.Sprintf("%d.json", year)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range noticeSeeds(f) {
		if y, err := calendar.ParseNotice(s); err == nil {
			data, _ := json.Marshal(y)
			f.Add(data)
		}
	}
	f.Add([]byte(fake2027))
	f.Add([]byte(override2026))
	f.Add([]byte(`{"year": 2013, "holidays": [{"name": "元旦", "from": "2013-01-01", "to": "2013-01-01"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var y calendar.Year
		if json.Unmarshal(data, &y) != nil {
			return
		}
		err := calendar.Check(y)
		if err2 := calendar.Check(y); fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("Check is not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			var ce *calendar.CheckError
			if !errors.As(err, &ce) || len(ce.Violations) == 0 {
				t.Fatalf("error %v (%T), want a *CheckError with violations", err, err)
			}
			for _, v := range ce.Violations {
				if v.Rule == "" || v.Message == "" {
					t.Fatalf("violation without rule or message: %+v", v)
				}
			}
			if _, err := calendar.New(y); err == nil {
				t.Fatal("New accepted what Check refused")
			}
			return
		}
		c, err := calendar.New(y)
		if err != nil {
			t.Fatalf("New refused what Check accepted: %v", err)
		}
		for _, h := range y.Holidays {
			d, err := c.Day(mustDate(h.From))
			if err == nil && (d.Working || d.Reason != calendar.ReasonHoliday) {
				t.Fatalf("holiday %s: %+v", h.From, d)
			}
		}
		for _, m := range y.Workdays {
			d, err := c.Day(mustDate(m.Date))
			if err == nil && (!d.Working || d.Reason != calendar.ReasonMakeUpWorkday) {
				t.Fatalf("make-up day %s: %+v", m.Date, d)
			}
		}
		enc, err := calendar.EncodeYear(y)
		if err != nil {
			t.Fatal(err)
		}
		back, err := calendar.ParseYear(enc)
		if err != nil {
			t.Fatalf("encoded file rejected: %v\n%s", err, enc)
		}
		if y.Workdays == nil {
			y.Workdays = []calendar.MakeUpDay{} // EncodeYear always writes the list
		}
		if got, want := mustJSON(t, back), mustJSON(t, y); got != want {
			t.Fatalf("round trip changed the file:\n%s\n%s", got, want)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
