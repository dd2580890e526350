package boltstore

import "syscall"

// dropMapped unmaps the pages of the store file's mapping at addr:
// MADV_DONTNEED on a shared file mapping drops the page table entries
// only, the data stays in the page cache.
func dropMapped(addr, size uintptr) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, size, syscall.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
