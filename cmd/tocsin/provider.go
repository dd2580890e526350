package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// runProvider registers and lists providers through the running server's
// API: the server owns the store and the NATS configuration, and the CLI
// acts as admin with a short-lived token signed by the data folder's key.
func runProvider(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list") {
		return usageError("usage: tocsin provider add --id ID --name NAME --regions 440000,450000 | tocsin provider list")
	}
	sub := args[0]
	fs := newFlagSet("provider "+sub, stderr)
	server := fs.String("server", envOr(getenv, "TOCSIN_SERVER", "http://127.0.0.1:8080"), "base URL of the running tocsin")
	data := fs.String("data", envOr(getenv, "TOCSIN_DATA", "./data"), "data folder holding keys/jwt.pem")
	keyFile := fs.String("jwt-key", envOr(getenv, "TOCSIN_JWT_KEY", ""), "Ed25519 private key (PKCS#8 PEM); default DATA/keys/jwt.pem")
	id := fs.String("id", "", "provider id (also its NATS user and consumer name)")
	name := fs.String("name", "", "provider name")
	regions := fs.String("regions", "", "comma-separated GB/T 2260 codes the provider covers")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	keys, err := loadKeys(*data, *keyFile)
	if err != nil {
		return err
	}
	token, err := keys.Issue(tocsin.Actor{Subject: "tocsin-cli", Role: tocsin.RoleAdmin, Org: "admin",
		Level: tocsin.LevelNational, Jurisdiction: tocsin.National}, time.Now(), 5*time.Minute)
	if err != nil {
		return err
	}
	method, url, body := http.MethodGet, strings.TrimRight(*server, "/")+"/api/v1/providers", []byte(nil)
	if sub == "add" {
		if *id == "" || *name == "" || *regions == "" {
			return usageError("provider add needs --id, --name and --regions")
		}
		method = http.MethodPost
		body, _ = json.Marshal(map[string]any{"id": *id, "name": *name, "regions": splitList(*regions)})
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is tocsin serving at %s? %w", *server, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(out, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s: %s", e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(out)
	}
	fmt.Fprintln(stdout, strings.TrimSpace(pretty.String()))
	if sub == "add" {
		fmt.Fprintln(stderr, "The password is shown only now; keep it with the provider's credentials.")
	}
	return nil
}
