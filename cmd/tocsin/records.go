package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
)

// runRecords purges and exports sending records through the running
// server.
func runRecords(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const use = "usage: tocsin records purge [--dry-run] | tocsin records export --from YYYY-MM-DD --to YYYY-MM-DD [--format csv|jsonl] [--bom]"
	if len(args) == 0 || (args[0] != "purge" && args[0] != "export") {
		return usageError(use)
	}
	sub := args[0]
	fs := newFlagSet("records "+sub, stderr)
	client := newAdminClient(fs, getenv)
	dryRun := fs.Bool("dry-run", false, "purge: only list what would be removed")
	from := fs.String("from", "", "export: first send date (YYYY-MM-DD or RFC 3339)")
	to := fs.String("to", "", "export: last send date (YYYY-MM-DD or RFC 3339)")
	format := fs.String("format", "csv", "export: csv or jsonl")
	bom := fs.Bool("bom", false, "export: start the CSV with a UTF-8 byte-order mark, for spreadsheet programs")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if sub == "purge" {
		return client.doJSON(ctx, http.MethodPost, "/records/purge", map[string]bool{"dry_run": *dryRun}, stdout)
	}
	if *from == "" || *to == "" {
		return usageError(use)
	}
	q := url.Values{"from": {*from}, "to": {*to}, "format": {*format}}
	if *bom {
		q.Set("bom", "true")
	}
	return client.do(ctx, http.MethodGet, "/records?"+q.Encode(), nil, stdout)
}
