package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// errUsage marks a command line we could not make sense of.
var errUsage = errors.New("usage")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

const usage = `tocsin coordinates public-welfare SMS broadcasts.

Usage:
  tocsin serve [flags]                  run the coordinator
  tocsin demo [flags]                   run it with a seeded demo directory
  tocsin calendar earliest YYYY-MM-DD   earliest permitted send date
  tocsin calendar days FROM TO          working days and why
  tocsin calendar import NOTICE.txt     read the State Council's notice (--calendars DIR or --server URL)
  tocsin token issue --org ORG          mint a service token for a stored organisation (through the server)
  tocsin token list|revoke ID           list service tokens, revoke one (through the server)
  tocsin provider add|list [flags]      register SMS providers
  tocsin provider rotate|revoke ID      new NATS credentials, or none
  tocsin provider disable|enable ID     hold or release a provider's dispatches
  tocsin nats bootstrap --out FILE      the NATS trust a cluster's nodes include
  tocsin audit verify --data DIR        check the audit trail (server stopped)
  tocsin records purge [--dry-run]      apply the retention policy now
  tocsin records export --from --to     sending records as CSV or JSON Lines
  tocsin bench [flags]                  measure the emergency path against raw chains (docs/benchmarks.md)

Run "tocsin COMMAND -h" for a command's flags.
`

// run is the whole program behind main, so tests can drive it end to end.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr, false)
	case "demo":
		return runServe(ctx, rest, getenv, stdout, stderr, true)
	case "calendar":
		return runCalendar(ctx, rest, getenv, stdout, stderr)
	case "token":
		return runToken(ctx, rest, getenv, stdout, stderr)
	case "provider":
		return runProvider(ctx, rest, getenv, stdout, stderr)
	case "nats":
		return runNATS(rest, getenv, stdout, stderr)
	case "audit":
		return runAudit(rest, getenv, stdout, stderr)
	case "records":
		return runRecords(ctx, rest, getenv, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError("unknown command %q", cmd)
}

// parseFlags parses flags that may come before, between or after the
// positional arguments, and returns the positionals. Everything after a
// "--" is positional, so an argument that starts with a dash can still be
// given.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError("%s", err)
		}
		rest := fs.Args()
		// The flag package swallows the "--" that ended its parse (but not
		// one that was a flag's value: --name --).
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" &&
			(consumed < 2 || !takesValue(fs, args[consumed-2])) {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// takesValue reports whether arg is a flag of fs given without "=" that
// takes the next argument as its value.
func takesValue(fs *flag.FlagSet, arg string) bool {
	name, ok := strings.CutPrefix(arg, "-")
	name = strings.TrimPrefix(name, "-")
	if !ok || name == "" || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, isBool := f.Value.(interface{ IsBoolFlag() bool })
	return !isBool || !b.IsBoolFlag()
}

// envOr returns the environment variable's value, or def when unset.
func envOr(getenv func(string) string, name, def string) string {
	if v := strings.TrimSpace(getenv(name)); v != "" {
		return v
	}
	return def
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tocsin "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
