package httpapi

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Purger removes records past their retention.
type Purger interface {
	Purge(ctx context.Context, dryRun bool) (retention string, purged []tocsin.Purged, err error)
}

func (s *Server) recordRoutes() chi.Router {
	r := chi.NewRouter()
	r.Get("/", s.handle(s.exportRecords))
	r.Post("/purge", s.handle(s.purgeRecords))
	return r
}

// recordColumns are the CSV export's columns: one row per broadcast and
// provider (a broadcast no provider received has one row without one).
var recordColumns = []string{
	"broadcast_id", "status", "filed_at", "send_at", "send_until", "released_at", "completed_at",
	"department", "agency", "sender_code", "emergency_type", "emergency_event", "warning_level", "exercise",
	"regions", "content", "provider", "provider_regions", "provider_status",
	"recipients", "sent", "delivered", "failed", "detail", "provider_updated_at",
	// Appended after the first columns, so scripts that read by position
	// keep working: the internal title, the review and the closure.
	"title", "headline", "review_decision", "reviewer", "reviewed_by", "reviewed_at",
	"reason_code", "reason", "closure", "closure_by", "closure_reason", "references", "corrected_by",
}

// exportRecords streams the sending records Article 11 requires (send
// times, sender codes, agency, content, regions, providers and their
// receipts) and what a supervisor asks about them (title, review
// decision, reviewer, reason code and reason, closure) for broadcasts whose send time falls in [from, to], as CSV or
// JSON Lines, one page of the store at a time.
//
// The CSV is for spreadsheet programs as much as for scripts: every cell
// is neutralised against formula injection (csvCell), and bom=true starts
// it with a UTF-8 byte-order mark, without which Excel reads the Chinese
// text as another encoding. The mark is opt-in so that scripts reading the
// header get "broadcast_id", not "\ufeffbroadcast_id".
func (s *Server) exportRecords(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	if a.Role != tocsin.RoleAdmin && a.Role != tocsin.RoleRegulator {
		return tocsin.Errorf(tocsin.CodeForbidden, "only regulators and admins export records")
	}
	q := r.URL.Query()
	from, err := parseBound("from", q.Get("from"), false)
	if err != nil {
		return err
	}
	to, err := parseBound("to", q.Get("to"), true)
	if err != nil {
		return err
	}
	if !to.After(from) {
		return tocsin.Errorf(tocsin.CodeValidation, "to must be after from").With("field", "to")
	}
	bom := false
	if v := q.Get("bom"); v != "" {
		if bom, err = strconv.ParseBool(v); err != nil {
			return tocsin.Errorf(tocsin.CodeValidation, "bom must be true or false").With("field", "bom")
		}
	}
	format := q.Get("format")
	switch format {
	case "", "csv":
		format = "csv"
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	case "jsonl", "ndjson":
		format = "jsonl"
		w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
	default:
		return tocsin.Errorf(tocsin.CodeValidation, "format must be csv or jsonl").With("field", "format")
	}
	w.Header().Set("Content-Disposition", `attachment; filename="tocsin-records.`+format+`"`)
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	cw := csv.NewWriter(w)
	enc := json.NewEncoder(w)
	if format == "csv" {
		if bom {
			_, _ = io.WriteString(w, "\ufeff")
		}
		_ = cw.Write(recordColumns)
	}
	cursor := ""
	for {
		page, err := s.Service.List(r.Context(), a, tocsin.Query{Limit: tocsin.MaxPageSize, Cursor: cursor})
		if err != nil {
			return err // before the first byte this is a proper error; after, the stream is cut short
		}
		for _, b := range page.Broadcasts {
			if b.SendAt.Before(from) || b.SendAt.After(to) {
				continue
			}
			if format == "jsonl" {
				if err := enc.Encode(s.view(a, b)); err != nil {
					return errClientGone
				}
				continue
			}
			for _, row := range recordRows(b) {
				if err := cw.Write(row); err != nil {
					return errClientGone
				}
			}
		}
		cw.Flush()
		_ = rc.Flush()
		if cursor = page.NextCursor; cursor == "" {
			return nil
		}
	}
}

func recordRows(b *tocsin.Broadcast) [][]string {
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	var etype, event, level string
	if e := b.Emergency; e != nil {
		etype, event, level = string(e.Type), e.Event, string(e.Level)
	}
	base := []string{
		b.ID, string(b.Status), b.FiledAt.Format(time.RFC3339), b.SendAt.Format(time.RFC3339), ts(b.SendUntil),
		ts(b.ReleasedAt), ts(b.CompletedAt), b.Department, b.Agency, b.SenderCode, etype, event, level,
		strconv.FormatBool(b.Exercise), strings.Join(b.Scope, " "), b.Content,
	}
	var decision, reviewer, reviewedBy, reviewedAt, reasonCode, reason string
	if rv := b.Review; rv != nil {
		decision, reviewer, reviewedBy, reviewedAt = string(rv.Decision), rv.Regulator, rv.By, rv.At.Format(time.RFC3339)
		reasonCode, reason = string(rv.ReasonCode), rv.Reason
	}
	var closure, closureBy, closureReason string
	if c := b.Closure; c != nil {
		closure, closureBy, closureReason = string(c.Action), c.Org, c.Reason
	}
	tail := []string{
		b.Title, b.Headline, decision, reviewer, reviewedBy, reviewedAt, reasonCode, reason,
		closure, closureBy, closureReason, b.References, strings.Join(b.CorrectedBy, " "),
	}
	if len(b.Providers) == 0 {
		row := append(base, "", "", "", "", "", "", "", "", "")
		return [][]string{neutralise(append(row, tail...))}
	}
	rows := make([][]string, 0, len(b.Providers))
	for _, p := range b.Providers {
		updated := p.UpdatedAt
		row := append(append([]string(nil), base...),
			p.Provider, strings.Join(p.Regions, " "), string(p.Status),
			strconv.Itoa(p.Recipients), strconv.Itoa(p.Sent), strconv.Itoa(p.Delivered), strconv.Itoa(p.Failed),
			p.Detail, ts(&updated))
		rows = append(rows, append(row, tail...))
	}
	for _, row := range rows {
		neutralise(row)
	}
	return rows
}

// neutralise makes every cell of row safe for a spreadsheet (csvCell) and
// returns row.
func neutralise(row []string) []string {
	for i, cell := range row {
		row[i] = csvCell(cell)
	}
	return row
}

// csvCell keeps a spreadsheet program from reading a cell as a formula:
// one that begins with =, +, -, @, a tab or a carriage return gets a
// single quote in front, as OWASP recommends ("CSV Injection"). Department
// content, event text and provider detail are free text from outside; the
// cells Tocsin makes itself (times, counts, statuses) never begin with one.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// parseBound reads a date (YYYY-MM-DD, a whole day in Asia/Shanghai) or an
// RFC 3339 time. An end date includes its whole day.
func parseBound(field, v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, tocsin.Errorf(tocsin.CodeValidation, "%s is required (YYYY-MM-DD or RFC 3339)", field).With("field", field)
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := parseDate(field, v)
	if err != nil {
		return d, err
	}
	if end {
		d = d.AddDate(0, 0, 1).Add(-time.Nanosecond)
	}
	return d, nil
}

func (s *Server) purgeRecords(w http.ResponseWriter, r *http.Request) error {
	if actor(r).Role != tocsin.RoleAdmin {
		return tocsin.Errorf(tocsin.CodeForbidden, "only an admin may purge records")
	}
	var body struct {
		DryRun bool `json:"dry_run"`
	}
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	if s.Purger == nil {
		return tocsin.Errorf(tocsin.CodeUnavailable, "purging is not configured")
	}
	retention, purged, err := s.Purger.Purge(r.Context(), body.DryRun)
	if err != nil {
		return err
	}
	if purged == nil {
		purged = []tocsin.Purged{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"dry_run": body.DryRun, "retention": retention, "purged": purged})
	return nil
}
