package calendars_test

import (
	"io/fs"
	"regexp"
	"strconv"
	"testing"

	"github.com/tocsin-dev/tocsin/calendars"
	"github.com/tocsin-dev/tocsin/internal/calendar"
)

// Every embedded file is named YYYY.json, parses strictly, and holds the
// year of its name; 2024 to 2026 are present.
func TestEmbeddedFiles(t *testing.T) {
	entries, err := fs.ReadDir(calendars.FS, "cn")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^(\d{4})\.json$`)
	found := map[int]bool{}
	for _, e := range entries {
		m := name.FindStringSubmatch(e.Name())
		if m == nil {
			t.Errorf("cn/%s: not named YYYY.json", e.Name())
			continue
		}
		data, err := fs.ReadFile(calendars.FS, "cn/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		y, err := calendar.ParseYear(data)
		if err != nil {
			t.Errorf("cn/%s: %v", e.Name(), err)
			continue
		}
		if want, _ := strconv.Atoi(m[1]); y.Year != want {
			t.Errorf("cn/%s: year %d", e.Name(), y.Year)
		}
		if len(y.Sources) == 0 {
			t.Errorf("cn/%s: no sources", e.Name())
		}
		for i, h := range y.Holidays {
			if h.NameEN == "" {
				t.Errorf("cn/%s: holidays[%d] (%s) has no name_en", e.Name(), i, h.Name)
			}
		}
		found[y.Year] = true
	}
	for _, year := range []int{2024, 2025, 2026} {
		if !found[year] {
			t.Errorf("cn/%d.json missing", year)
		}
	}
}
