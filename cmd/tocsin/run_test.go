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
