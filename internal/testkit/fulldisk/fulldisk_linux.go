// Package fulldisk gives tests a real disk that really fills up: a small
// tmpfs, and a ballast file to fill it. It is for tests only, and stands
// apart from package testkit so that the store's own tests can use it.
package fulldisk

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of the given size ("4m") on a fresh folder and
// unmounts it when the test ends. It needs root; CI runs as root, so
// there a missing privilege fails the test instead of hiding it.
func Mount(tb testing.TB, size string) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			tb.Fatal("the full-disk tests mount a tmpfs and need root, which CI provides; not root here")
		}
		tb.Skip("needs root to mount a small tmpfs (a real full disk); skipped")
	}
	dir := tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		tb.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	// Registered after TempDir's removal, so it runs before it. Detached:
	// a server under test may still hold files there for a moment.
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a ballast file in dir until the file system is full, and
// returns its path: remove it to free the space.
func Fill(tb testing.TB, dir string) string {
	tb.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	// Large chunks, then pages: tmpfs accounts in pages.
	for _, size := range []int{1 << 20, 4096} {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					tb.Fatalf("fill: %v", err)
				}
				break
			}
		}
	}
	return path
}
