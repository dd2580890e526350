package boltstore

import (
	"path/filepath"
	"syscall"
)

// freeBytes is the space an unprivileged writer may still use on the file
// system holding path; ok is false if it cannot be told.
func freeBytes(path string) (free uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
