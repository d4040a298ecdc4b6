//go:build !unix

package audit

import "os"

// lockFile and unlockFile are no-ops where flock(2) is not: one process
// per audit file.
func lockFile(*os.File)   {}
func unlockFile(*os.File) {}

func fileSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
