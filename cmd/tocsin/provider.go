package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/tocsin-dev/tocsin/internal/atomicfile"
)

const providerUsage = `usage:
  tocsin provider add --id ID --name NAME --regions 440000,450000 [--creds-out FILE]
  tocsin provider list
  tocsin provider rotate ID [--creds-out FILE]   new NATS credentials; the old are revoked
  tocsin provider revoke ID                      revoke its NATS credentials now
  tocsin provider disable ID | enable ID         hold or release its dispatches`

// runProvider registers and manages providers through the running server.
func runProvider(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	subs := []string{"add", "list", "rotate", "revoke", "disable", "enable"}
	if len(args) == 0 || !slices.Contains(subs, args[0]) {
		return usageError("%s", providerUsage)
	}
	sub := args[0]
	fs := newFlagSet("provider "+sub, stderr)
	client := newAdminClient(fs, getenv)
	var id, name, regions, credsOut *string
	if sub == "add" {
		id = fs.String("id", "", "provider id (also its NATS user and consumer name)")
		name = fs.String("name", "", "provider name")
		regions = fs.String("regions", "", "comma-separated GB/T 2260 codes the provider covers")
	}
	if sub == "add" || sub == "rotate" {
		credsOut = fs.String("creds-out", "", "write the provider's NATS credentials file here (0600), to hand to the provider")
	}
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return client.doJSON(ctx, http.MethodGet, "/providers", nil, stdout)
	case "add":
		if *id == "" || *name == "" || *regions == "" {
			return usageError("provider add needs --id, --name and --regions")
		}
		body := map[string]any{"id": *id, "name": *name, "regions": splitList(*regions)}
		return issued(ctx, client, "/providers", body, *credsOut, stdout, stderr)
	}
	if len(pos) != 1 {
		return usageError("provider %s needs one provider id", sub)
	}
	path := "/providers/" + url.PathEscape(pos[0]) + "/" + sub
	if sub == "rotate" {
		return issued(ctx, client, path, nil, *credsOut, stdout, stderr)
	}
	return client.doJSON(ctx, http.MethodPost, path, nil, stdout)
}

// issued posts a request that issues credentials, prints the answer and
// writes its .creds text to credsOut if given.
func issued(ctx context.Context, client *adminClient, path string, body any, credsOut string, stdout, stderr io.Writer) error {
	var buf bytes.Buffer
	if err := client.doJSON(ctx, http.MethodPost, path, body, &buf); err != nil {
		return err
	}
	if credsOut != "" {
		var out struct {
			Creds string `json:"creds"`
		}
		if err := json.Unmarshal(buf.Bytes(), &out); err != nil || out.Creds == "" {
			return fmt.Errorf("the server's answer has no credentials: %s", buf.String())
		}
		// 0600: the file holds the user's seed.
		if err := atomicfile.Write(credsOut, []byte(out.Creds), 0o600); err != nil {
			return fmt.Errorf("--creds-out: %w", err)
		}
		fmt.Fprintf(stderr, "Credentials written to %s; the provider connects with: nats --creds %s ...\n", credsOut, credsOut)
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "The credentials (creds) are shown only now: hand them to the provider; they stay valid until revoked or rotated.")
	return nil
}
