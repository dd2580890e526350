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

func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		gogc string
		want int // 0: left to GOGC
		bad  bool
	}{
		{"default", nil, "", defaultGCPercent, false},
		{"set", []string{"--gc-percent", "100"}, "", 100, false},
		{"GOGC decides", []string{"--gc-percent", "100"}, "200", 0, false},
		{"not a percentage", []string{"--gc-percent", "0"}, "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			}
			cfg, err := parseServeConfig(tc.args, env, io.Discard, false)
			if (err != nil) != tc.bad || (!tc.bad && cfg.GCPercent != tc.want) {
				t.Errorf("GCPercent %d, %v; want %d, error %v", cfg.GCPercent, err, tc.want, tc.bad)
			}
		})
	}
}
