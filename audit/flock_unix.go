//go:build unix

package audit

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive lock of f (flock(2)) until unlockFile: the
// processes that chain records onto one file take turns.
func lockFile(f *os.File) {
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX) == syscall.EINTR {
	}
}

func unlockFile(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// fileSize is f's size, by fstat(2) without allocating.
func fileSize(f *os.File) (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}
