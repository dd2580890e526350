package main

import (
	"fmt"
	"io"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
)

// runNATS runs the nats sub-commands: bootstrap writes the trust a
// cluster's nodes include (deploy/nats/node.conf) before any of them
// starts, from the data folder's keys (created if they are not there).
func runNATS(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "bootstrap" {
		return usageError("usage: tocsin nats bootstrap --data DIR --out FILE")
	}
	fs := newFlagSet("nats bootstrap", stderr)
	data := fs.String("data", envOr(getenv, "TOCSIN_DATA", "./data"), "data folder: the NATS keys are in DATA/nats/keys")
	out := fs.String("out", envOr(getenv, "TOCSIN_NATS_ACCOUNTS", ""), "file to write (what node.conf includes, e.g. accounts/accounts.conf)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 || *out == "" {
		return usageError("nats bootstrap needs --out FILE and takes no arguments")
	}
	keys, err := natsbus.LoadKeys(natsKeysDir(*data))
	if err != nil {
		return err
	}
	if err := writeTrust(keys, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "operator %s\nsystem account %s\ncoordinator account %s\nwritten to %s\n",
		keys.OperatorKey(), keys.SystemAccount(), keys.CoordinatorAccountKey(), *out)
	return nil
}
