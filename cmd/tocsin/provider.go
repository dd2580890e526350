package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// runProvider registers and lists providers through the running server.
func runProvider(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list") {
		return usageError("usage: tocsin provider add --id ID --name NAME --regions 440000,450000 | tocsin provider list")
	}
	sub := args[0]
	fs := newFlagSet("provider "+sub, stderr)
	client := newAdminClient(fs, getenv)
	id := fs.String("id", "", "provider id (also its NATS user and consumer name)")
	name := fs.String("name", "", "provider name")
	regions := fs.String("regions", "", "comma-separated GB/T 2260 codes the provider covers")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if sub == "list" {
		return client.doJSON(ctx, http.MethodGet, "/providers", nil, stdout)
	}
	if *id == "" || *name == "" || *regions == "" {
		return usageError("provider add needs --id, --name and --regions")
	}
	body := map[string]any{"id": *id, "name": *name, "regions": splitList(*regions)}
	if err := client.doJSON(ctx, http.MethodPost, "/providers", body, stdout); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "The password is shown only now; keep it with the provider's credentials.")
	return nil
}
