package main

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every file Tocsin writes into a data folder is readable by its owner
// only, but for what is public on purpose: the JWT public key and the
// working-day calendars.
func TestDataFolderFilesAre0600(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators")
	s.stop() // every file written, nothing half-written
	public := func(rel string) bool {
		return rel == filepath.Join("keys", "jwt.pub.pem") || strings.HasPrefix(rel, "calendars"+string(filepath.Separator))
	}
	secrets := map[string]bool{
		"tocsin.db": false, filepath.Join("keys", "jwt.pem"): false, "demo-tokens.json": false,
		"demo-providers.json": false, filepath.Join("nats", "nats.conf"): false,
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if _, ok := secrets[rel]; ok {
			secrets[rel] = true
		}
		switch {
		case public(rel):
		case d.IsDir() && info.Mode().Perm()&0o077 != 0:
			t.Errorf("folder %s is %v, want 0700", rel, info.Mode().Perm())
		case !d.IsDir() && info.Mode().Perm() != 0o600:
			t.Errorf("%s is %v, want 0600", rel, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel, seen := range secrets {
		if !seen {
			t.Errorf("the demo wrote no %s", rel)
		}
	}
}

// Registering a provider under one of the coordinator's own names is
// refused before anything is written: the NATS configuration stays as it
// was, later registrations work, and the server starts again.
func TestReservedProviderIDRefused(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators")
	admin := demoTokens(t, dir)["admin"]
	conf := filepath.Join(dir, "nats", "nats.conf")
	before, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"tocsin", "tocsin-coordinator", "sys", "admin", "TOCSIN", "$G", "a.b", "x"} {
		t.Run(id, func(t *testing.T) {
			res := call(t, http.MethodPost, s.base+"/api/v1/providers", admin,
				`{"id": "`+id+`", "name": "Impostor", "regions": ["440000"]}`)
			if res.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %v", res.status, res.body)
			}
			e, _ := res.body["error"].(map[string]any)
			if e["code"] != "validation_failed" || e["field"] != "id" {
				t.Errorf("error = %v", e)
			}
		})
	}
	if after, err := os.ReadFile(conf); err != nil || !bytes.Equal(before, after) {
		t.Errorf("nats.conf changed (%v)", err)
	}
	list := call(t, http.MethodGet, s.base+"/api/v1/providers", admin, "")
	for _, p := range list.body["providers"].([]any) {
		if id := p.(map[string]any)["id"]; id != "cmcc" && id != "cucc" && id != "ctcc" {
			t.Errorf("provider %v was stored", id)
		}
	}
	if res := call(t, http.MethodPost, s.base+"/api/v1/providers", admin,
		`{"id": "gx-mobile", "name": "Guangxi Mobile", "regions": ["450000"]}`); res.status != http.StatusCreated {
		t.Fatalf("a valid registration after the refusals: %d %v", res.status, res.body)
	}
	s.stop()
	startServer(t, dir, "demo", "--no-simulators")
}

// --public-url is the base of the links in CAP and Atom documents; a bad
// one is refused at start.
func TestPublicURLFlag(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators", "--public-url", "https://alerts.example.gov.cn/")
	req, err := http.NewRequest(http.MethodGet, s.base+"/feeds/alerts.atom", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "evil.example"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "<id>https://alerts.example.gov.cn/feeds/alerts.atom</id>") || strings.Contains(string(body), "evil") {
		t.Errorf("feed:\n%s", body)
	}
	for _, bad := range []string{"alerts.example.gov.cn", "ftp://alerts.example.gov.cn", "https://", "https://a.example/?x=1", "https://u:p@a.example"} {
		t.Run(bad, func(t *testing.T) {
			_, err := parseServeConfig([]string{"--public-url", bad}, noEnv, io.Discard, false)
			if err == nil || !strings.Contains(err.Error(), "--public-url") {
				t.Errorf("--public-url %s: %v", bad, err)
			}
		})
	}
	cfg, err := parseServeConfig(nil, func(k string) string {
		if k == "TOCSIN_PUBLIC_URL" {
			return "https://alerts.example.gov.cn/tocsin/"
		}
		return ""
	}, io.Discard, true)
	if err != nil || cfg.PublicURL != "https://alerts.example.gov.cn/tocsin" {
		t.Errorf("TOCSIN_PUBLIC_URL: %q, %v", cfg.PublicURL, err)
	}
}
