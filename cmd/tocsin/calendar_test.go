package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeNotice(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notice.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFixture(t *testing.T, year string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "calendar", "testdata", "notices", year+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A notice for a year not shipped: dry run writes nothing, a real import
// writes DIR/YYYY.json, which days and earliest then use.
func TestCalendarImport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cal")
	// 2023 is not embedded; its notice reaches into 2022, also not loaded.
	notice := writeNotice(t, readFixture(t, "2023"))
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"calendar", "import", notice, "--calendars", dir, "--dry-run"}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	out := stdout.String()
	for _, want := range []string{
		"国务院办公厅关于2023年部分节假日安排的通知, 国办发明电〔2022〕16号, 2022-12-08\n",
		"2023 is not loaded now",
		"2023-01-02 Mon  workday (no calendar) -> holiday (元旦, New Year's Day)\n",
		"2023-01-28 Sat  weekend (no calendar) -> make-up working day (春节, Spring Festival)\n",
		"2023-09-29 Fri  workday (no calendar) -> holiday (中秋节、国庆节, Mid-Autumn Festival and National Day)\n",
		"dry run: nothing written\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "2023.json")); !os.IsNotExist(err) {
		t.Fatalf("dry run wrote a file: %v", err)
	}

	stdout.Reset()
	if err := run(context.Background(), []string{"calendar", "import", notice, "--calendars", dir}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("import: %v", err)
	}
	if !strings.Contains(stdout.String(), "wrote "+filepath.Join(dir, "2023.json")) {
		t.Errorf("import output:\n%s", stdout.String())
	}
	stdout.Reset()
	// Filed Thu 2023-09-21: 09-22 #1, 09-25..28 #2-#5, 09-29..10-06 off,
	// 10-07 Sat #6, 10-08 Sun #7, 10-09..11 #8-#10.
	if err := run(context.Background(), []string{"calendar", "earliest", "2023-09-21", "--calendars", dir}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("earliest: %v", err)
	}
	if stdout.String() != "2023-10-11\n" {
		t.Errorf("earliest 2023-09-21 = %q, want 2023-10-11", stdout.String())
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"calendar", "days", "2023-10-07", "2023-10-07", "--calendars", dir}, noEnv, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "make-up working day (中秋节、国庆节") {
		t.Errorf("days: %s", stdout.String())
	}

	// Importing the same notice again changes nothing.
	stdout.Reset()
	if err := run(context.Background(), []string{"calendar", "import", notice, "--calendars", dir, "--dry-run"}, noEnv, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "2023 is loaded now") || !strings.Contains(stdout.String(), "no day changes") {
		t.Errorf("second dry run:\n%s", stdout.String())
	}
}

func TestCalendarImportRefuses(t *testing.T) {
	good := readFixture(t, "2026")
	tests := []struct {
		name string
		args func(dir string) []string
		want []string
	}{
		{"make-up day on a weekday", func(string) []string {
			return []string{writeNotice(t, strings.Replace(good, "5月9日(周六)上班", "5月8日上班", 1))}
		}, []string{"5月8日上班", "Friday"}},
		{"Spring Festival a week off", func(string) []string {
			return []string{writeNotice(t, strings.Replace(good, "2月15日(农历腊月二十八、周日)至23日(农历正月初七、周一)放假调休,共9天。2月14日(周六)、2月28日(周六)上班",
				"2月22日(周日)至3月2日(周一)放假调休,共9天。2月21日(周六)、3月7日(周六)上班", 1))}
		}, []string{"2026-02-16", "农历除夕", "statutory"}},
		{"missing statutory day", func(string) []string {
			return []string{writeNotice(t, strings.Replace(good, "10月1日(周四)至7日(周三)放假调休,共7天", "10月1日(周四)至2日(周五)放假调休,共2天", 1))}
		}, []string{"2026-10-03", "国庆节"}},
		{"no such file", func(dir string) []string { return []string{filepath.Join(dir, "nope.txt")} }, []string{"nope.txt"}},
		{"no directory", func(string) []string { return []string{writeNotice(t, good), "--calendars", ""} }, []string{"--calendars"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"calendar", "import"}, tt.args(dir)...)
			if !containsArg(args, "--calendars") {
				args = append(args, "--calendars", dir)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, noEnv, &stdout, &stderr)
			if err == nil {
				t.Fatalf("import succeeded:\n%s", stdout.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 && tt.name != "no such file" {
				t.Errorf("a refused import wrote %v", entries)
			}
		})
	}
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}
