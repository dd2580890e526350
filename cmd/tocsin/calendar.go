package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/atomicfile"
	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func runCalendar(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("calendar", stderr)
	dir := fs.String("calendars", envOr(getenv, "TOCSIN_CALENDARS", ""), "directory of extra calendar files (YYYY.json)")
	dryRun := fs.Bool("dry-run", false, "import: print the changes and write nothing")
	client := newAdminClient(fs, getenv)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage:\n  tocsin calendar earliest YYYY-MM-DD\n  tocsin calendar days FROM TO\n  tocsin calendar import NOTICE.txt --calendars DIR [--dry-run]\n  tocsin calendar import NOTICE.txt --server URL [--data DIR] [--dry-run]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	toServer := false
	fs.Visit(func(f *flag.Flag) { toServer = toServer || f.Name == "server" })
	if len(pos) == 2 && pos[0] == "import" && toServer {
		return importToServer(ctx, client, pos[1], *dryRun, stdout)
	}
	if len(pos) == 0 {
		fs.Usage()
		return usageError("calendar needs a subcommand: earliest, days or import")
	}
	loadDir := *dir
	if _, err := os.Stat(loadDir); pos[0] == "import" && os.IsNotExist(err) {
		loadDir = "" // import creates the directory; until then only the embedded years are loaded
	}
	cal, err := calendar.Load(loadDir)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "earliest":
		if len(pos) != 2 {
			return usageError("usage: tocsin calendar earliest YYYY-MM-DD")
		}
		filed, err := parseDay(pos[1])
		if err != nil {
			return err
		}
		d, err := cal.EarliestSendDate(filed)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, d.Format(tocsin.DateLayout))
		return nil
	case "days":
		if len(pos) != 3 {
			return usageError("usage: tocsin calendar days FROM TO")
		}
		from, err := parseDay(pos[1])
		if err != nil {
			return err
		}
		to, err := parseDay(pos[2])
		if err != nil {
			return err
		}
		if to.Before(from) {
			return usageError("TO (%s) is before FROM (%s)", pos[2], pos[1])
		}
		days, err := cal.Days(from, to)
		if err != nil {
			return err
		}
		for _, d := range days {
			fmt.Fprintln(stdout, d.String())
		}
		return nil
	case "import":
		if len(pos) != 2 {
			return usageError("usage: tocsin calendar import NOTICE.txt --calendars DIR [--dry-run]")
		}
		return importNotice(cal, pos[1], *dir, *dryRun, stdout)
	}
	return usageError("unknown calendar subcommand %q (want earliest, days or import)", pos[0])
}

// importNotice reads a State Council notice, checks it, prints what it
// changes against the calendar loaded now, and unless dryRun writes
// DIR/YYYY.json atomically, where `serve --calendars DIR` and the other
// calendar commands will find it.
func importNotice(cal *calendar.Calendar, file, dir string, dryRun bool, stdout io.Writer) error {
	if dir == "" && !dryRun {
		return usageError("import needs --calendars DIR to write the year's file to (or --dry-run)")
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("calendar import: %w", err)
	}
	y, changes, err := calendar.Import(string(text), cal)
	if err != nil {
		return fmt.Errorf("calendar import: %s: %w", file, err)
	}
	src := []string{y.Notice}
	if y.Source != nil {
		if y.Source.Number != "" {
			src = append(src, y.Source.Number)
		}
		if y.Source.Date != "" {
			src = append(src, y.Source.Date)
		}
	}
	fmt.Fprintln(stdout, strings.Join(src, ", "))
	if _, loaded := cal.File(y.Year); loaded {
		fmt.Fprintf(stdout, "%d is loaded now; the notice changes:\n", y.Year)
	} else {
		fmt.Fprintf(stdout, "%d is not loaded now; against plain weekdays and weekends, the notice makes:\n", y.Year)
	}
	fmt.Fprint(stdout, calendar.FormatChanges(changes))
	if dryRun {
		fmt.Fprintln(stdout, "dry run: nothing written")
		return nil
	}
	data, err := calendar.EncodeYear(*y)
	if err != nil {
		return fmt.Errorf("calendar import: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("calendar import: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%d.json", y.Year))
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("calendar import: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", path)
	return nil
}

func parseDay(s string) (time.Time, error) {
	d, err := time.ParseInLocation(tocsin.DateLayout, s, tocsin.Shanghai)
	if err != nil {
		return d, usageError("%q is not a date in the form YYYY-MM-DD", s)
	}
	return d, nil
}

// importToServer loads a notice into the running server (PUT
// /api/v1/calendars/{year}), where it takes effect at once, and prints the
// day-by-day changes.
func importToServer(ctx context.Context, client *adminClient, file string, dryRun bool, stdout io.Writer) error {
	text, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("calendar import: %w", err)
	}
	// Read it here first: a notice that cannot be read says so without a
	// server, and the year names the resource.
	y, err := calendar.ParseNotice(string(text))
	if err != nil {
		return fmt.Errorf("calendar import: %s: %w", file, err)
	}
	path := fmt.Sprintf("/calendars/%d", y.Year)
	if dryRun {
		path += "?dry_run=true"
	}
	var buf strings.Builder
	if err := client.do(ctx, "PUT", path, rawBody{"text/plain; charset=utf-8", text}, &buf); err != nil {
		return fmt.Errorf("calendar import: %w", err)
	}
	var out struct {
		Loaded  bool `json:"loaded"`
		Changes []struct {
			Line string `json:"line"`
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(buf.String()), &out); err != nil {
		return fmt.Errorf("calendar import: the server's answer: %w", err)
	}
	for _, c := range out.Changes {
		fmt.Fprintln(stdout, c.Line)
	}
	if out.Loaded {
		fmt.Fprintf(stdout, "%d loaded into %s: in effect now\n", y.Year, *client.server)
	} else {
		fmt.Fprintf(stdout, "%d: dry run, nothing loaded (%d changed days)\n", y.Year, len(out.Changes))
	}
	return nil
}
