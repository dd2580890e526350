package main

import (
	"io"
	"slices"
	"testing"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		positional []string
		org        string
	}{
		{"flags first", []string{"--org", "gd-met", "ID"}, []string{"ID"}, "gd-met"},
		{"flags last", []string{"ID", "--org", "gd-met"}, []string{"ID"}, "gd-met"},
		{"flags between", []string{"A", "--org", "gd-met", "B"}, []string{"A", "B"}, "gd-met"},
		{"a dash-led argument after --", []string{"--org", "gd-met", "--", "-kSFt"}, []string{"-kSFt"}, "gd-met"},
		{"no flags after --", []string{"--", "ID", "--org", "x"}, []string{"ID", "--org", "x"}, ""},
		{"-- after a positional", []string{"ID", "--", "-x"}, []string{"ID", "-x"}, ""},
		{"none", nil, nil, ""},
		{"-- as a flag's value", []string{"--org", "--", "ID"}, []string{"ID"}, "--"},
		{"-- as a flag's value, then the terminator", []string{"--org", "--", "--", "-x"}, []string{"-x"}, "--"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("test", io.Discard)
			org := fs.String("org", "", "")
			got, err := parseFlags(fs, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.positional) || *org != tc.org {
				t.Errorf("parseFlags(%q) = %q, org %q; want %q, org %q", tc.args, got, *org, tc.positional, tc.org)
			}
		})
	}
	fs := newFlagSet("test", io.Discard)
	if _, err := parseFlags(fs, []string{"-kSFtwE7yXOM89S_dIiLNg"}); err == nil {
		t.Error("an unknown flag: no error")
	}
}

func TestMemoryFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		gcPercent int   // 0: left to GOGC
		limit     int64 // 0: left to GOMEMLIMIT
		floor     int64
		bad       bool
	}{
		{"default", nil, nil, 100, 100 << 20, 192 << 20, false},
		{"no heap floor", []string{"--gc-heap-floor", "off"}, nil, 100, 100 << 20, 0, false},
		{"not a floor", []string{"--gc-heap-floor", "64MB"}, nil, 0, 0, 192 << 20, true},
		{"set", []string{"--gc-percent", "50", "--memory-limit", "2GiB"}, nil, 50, 2 << 30, 192 << 20, false},
		{"bytes", []string{"--memory-limit", "1000000"}, nil, 100, 1000000, 192 << 20, false},
		{"no limit", []string{"--memory-limit", "off"}, nil, 100, 0, 192 << 20, false},
		{"GOGC decides", []string{"--gc-percent", "50"}, map[string]string{"GOGC": "200"}, 0, 100 << 20, 192 << 20, false},
		{"GOMEMLIMIT decides", []string{"--memory-limit", "1GiB"}, map[string]string{"GOMEMLIMIT": "300MiB"}, 100, 0, 192 << 20, false},
		{"not a percentage", []string{"--gc-percent", "0"}, nil, 0, 0, 192 << 20, true},
		{"not a size", []string{"--memory-limit", "100MB"}, nil, 0, 0, 192 << 20, true},
		{"no number", []string{"--memory-limit", "MiB"}, nil, 0, 0, 192 << 20, true},
		{"too large", []string{"--memory-limit", "9000000000GiB"}, nil, 0, 0, 192 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) string { return tc.env[k] }
			cfg, err := parseServeConfig(tc.args, env, io.Discard, false)
			if (err != nil) != tc.bad {
				t.Fatalf("error %v, want an error: %v", err, tc.bad)
			}
			if !tc.bad && (cfg.GCPercent != tc.gcPercent || cfg.MemoryLimit != tc.limit || cfg.HeapFloor != tc.floor) {
				t.Errorf("GCPercent %d, MemoryLimit %d, HeapFloor %d; want %d, %d, %d",
					cfg.GCPercent, cfg.MemoryLimit, cfg.HeapFloor, tc.gcPercent, tc.limit, tc.floor)
			}
		})
	}
}
