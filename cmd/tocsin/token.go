package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/tocsin-dev/tocsin/internal/auth"
)

const tokenUsage = "usage: tocsin token issue --org ORG [--ttl DURATION] [--name NAME] [--subject SUBJECT] | tocsin token list [--org ORG] | tocsin token revoke ID"

// runToken issues, lists and revokes service tokens through the running
// server, which owns the store they are kept in: a token is only minted
// for a stored organisation, with its stored role, level and
// jurisdiction, and each has an id it can be revoked by.
func runToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "issue" && args[0] != "list" && args[0] != "revoke") {
		return usageError(tokenUsage)
	}
	sub := args[0]
	fs := newFlagSet("token "+sub, stderr)
	client := newAdminClient(fs, getenv)
	org := fs.String("org", "", "organisation id (stored on the server)")
	ttl := fs.Duration("ttl", 24*time.Hour, "issue: lifetime of the token")
	name := fs.String("name", "", "issue: what the token is for")
	subject := fs.String("subject", "", "issue: token subject (default: the organisation id)")
	// Claims the store now decides; refused with a pointer, rather than
	// silently ignored.
	for _, f := range []string{"role", "level", "jur"} {
		fs.String(f, "", "no longer used: the organisation's stored "+f+" applies")
	}
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	var stale []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "role" || f.Name == "level" || f.Name == "jur" {
			stale = append(stale, "--"+f.Name)
		}
	})
	if len(stale) > 0 {
		return usageError("token %s: %v are no longer accepted: a token acts with its organisation's stored role, level and jurisdiction", sub, stale)
	}
	switch sub {
	case "list":
		path := "/tokens"
		if *org != "" {
			path += "?org=" + url.QueryEscape(*org)
		}
		return client.doJSON(ctx, http.MethodGet, path, nil, stdout)
	case "revoke":
		if len(pos) != 1 {
			return usageError("usage: tocsin token revoke ID")
		}
		if err := client.do(ctx, http.MethodDelete, "/tokens/"+url.PathEscape(pos[0]), nil, io.Discard); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "token %s revoked\n", pos[0])
		return nil
	}
	if *org == "" {
		return usageError("token issue needs --org")
	}
	var buf bytes.Buffer
	body := map[string]string{"org": *org, "ttl": ttl.String(), "name": *name, "subject": *subject}
	if err := client.do(ctx, http.MethodPost, "/tokens", body, &buf); err != nil {
		return fmt.Errorf("issue token: %w", err)
	}
	var issued struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(buf.Bytes(), &issued); err != nil || issued.Token == "" {
		return fmt.Errorf("issue token: unexpected answer %q", buf.String())
	}
	fmt.Fprintln(stdout, issued.Token)
	fmt.Fprintf(stderr, "token %s issued; revoke it with: tocsin token revoke %s\n", issued.ID, issued.ID)
	return nil
}

// loadKeys reads the signing key given by flag, or the data folder's pair,
// creating that pair on first use.
func loadKeys(data, keyFile string) (*auth.Keys, error) {
	if keyFile != "" {
		return auth.LoadPrivateKeyFile(keyFile)
	}
	keys, _, err := auth.LoadOrCreateKeys(filepath.Join(data, "keys"))
	return keys, err
}
