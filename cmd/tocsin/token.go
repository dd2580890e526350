package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func runToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "issue" {
		return usageError("usage: tocsin token issue --role ROLE --org ORG [--level LEVEL] [--jur CODE] [--ttl DURATION]")
	}
	fs := newFlagSet("token issue", stderr)
	data := fs.String("data", envOr(getenv, "TOCSIN_DATA", "./data"), "data folder holding keys/jwt.pem")
	keyFile := fs.String("jwt-key", envOr(getenv, "TOCSIN_JWT_KEY", ""), "Ed25519 private key (PKCS#8 PEM); default DATA/keys/jwt.pem")
	role := fs.String("role", "", "admin, regulator or department")
	org := fs.String("org", "", "organisation id")
	level := fs.String("level", "national", "national, provincial, prefecture or county")
	jur := fs.String("jur", "", `jurisdiction: "national" or a GB/T 2260 region code (default national for national level)`)
	subject := fs.String("subject", "", "token subject (default: the organisation id)")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *jur == "" && tocsin.Level(*level) == tocsin.LevelNational {
		*jur = tocsin.National
	}
	keys, err := loadKeys(*data, *keyFile)
	if err != nil {
		return err
	}
	token, err := keys.Issue(tocsin.Actor{
		Subject: *subject, Role: tocsin.Role(*role), Org: *org,
		Level: tocsin.Level(*level), Jurisdiction: *jur,
	}, time.Now(), *ttl)
	if err != nil {
		return fmt.Errorf("issue token: %w", err)
	}
	fmt.Fprintln(stdout, token)
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
