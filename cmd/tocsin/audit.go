package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/tocsin-dev/tocsin/internal/boltstore"
)

// runAudit verifies the hash-chained audit trail of a stopped server's
// store, exiting non-zero at the first broken link.
func runAudit(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usageError("usage: tocsin audit verify --data DIR")
	}
	fs := newFlagSet("audit verify", stderr)
	data := fs.String("data", envOr(getenv, "TOCSIN_DATA", "./data"), "data folder of a stopped tocsin")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	rep, err := boltstore.VerifyAudit(filepath.Join(*data, "tocsin.db"))
	var broken *boltstore.BrokenLink
	if errors.As(err, &broken) {
		return fmt.Errorf("audit trail broken: %w", broken)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit trail intact: %d entries, %d broadcast records match; head %s\n", rep.Entries, rep.Broadcasts, rep.Head)
	return nil
}
