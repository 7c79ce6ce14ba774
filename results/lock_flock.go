//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package results

import (
	"errors"
	"os"
	"syscall"
)

// lock takes an exclusive advisory lock on f, without waiting. The lock
// goes with the file descriptor: it is released when f is closed or the
// process dies, even by SIGKILL.
func lock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
}
