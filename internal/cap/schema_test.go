package cap_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// schemaPath is the OASIS CAP 1.2 schema (see testdata/CAP-v1.2.xsd.NOTICE).
const schemaPath = "testdata/CAP-v1.2.xsd"

// xmllint returns the path of libxml2's xmllint. Without it the test is
// skipped on a developer's machine and fails in CI (CI=true), where
// .ci/run installs it.
func xmllint(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint is not installed (apt-get install -y libxml2-utils); CI must run the schema checks")
		}
		t.Skip("xmllint is not installed (apt-get install -y libxml2-utils)")
	}
	return path
}

// lint runs xmllint with args on data and returns its combined output and
// whether it succeeded.
func lint(t *testing.T, data []byte, args ...string) (string, bool) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "doc.xml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(xmllint(t), append(append([]string{"--noout", "--nonet"}, args...), file)...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func schema(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(schemaPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the CAP 1.2 schema is missing: %v", err)
		}
		t.Skipf("the CAP 1.2 schema is missing: %v", err)
	}
	return schemaPath
}

// TestSchema validates the CAP of every kind of broadcast against the
// official OASIS CAP 1.2 schema with an independent validator.
func TestSchema(t *testing.T) {
	xsd := schema(t)
	for kind, b := range kinds() {
		t.Run(kind, func(t *testing.T) {
			out := mustEncode(t, b)
			if msg, ok := lint(t, out, "--schema", xsd); !ok {
				t.Errorf("the CAP of a %s broadcast is not valid CAP 1.2:\n%s\n%s", kind, msg, out)
			}
		})
	}
	// Every level and type, and a broadcast with no send window or names.
	for _, level := range []string{"red", "orange", "yellow", "blue"} {
		for _, typ := range []string{"natural_disaster", "accident", "public_health", "social_security"} {
			b := emergencyBroadcast()
			b.Emergency.Level, b.Emergency.Type, b.Emergency.Event = tocsinLevel(level), tocsinType(typ), "道路交通火灾"
			b.SendUntil = nil
			if msg, ok := lint(t, mustEncode(t, b), "--schema", xsd); !ok {
				t.Errorf("the CAP of a %s %s emergency is not valid CAP 1.2:\n%s", level, typ, msg)
			}
		}
	}
}

// TestSchemaRejects makes sure the schema check can fail: a CAP dateTime
// in UTC written with "Z" is not CAP 1.2.
func TestSchemaRejects(t *testing.T) {
	xsd := schema(t)
	out := strings.Replace(string(mustEncode(t, emergencyBroadcast())), "2026-09-18T10:00:00+08:00", "2026-09-18T02:00:00Z", 1)
	if msg, ok := lint(t, []byte(out), "--schema", xsd); ok {
		t.Errorf("xmllint accepted a sent time with Z:\n%s", msg)
	}
}
