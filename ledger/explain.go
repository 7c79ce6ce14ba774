package ledger

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Explained is an error of SQLite's, in the operator's words: what
// happened to the ledger's file, and what to do. Unwrap gives SQLite's.
type Explained struct {
	msg string
	err error
}

func (e *Explained) Error() string { return e.msg }
func (e *Explained) Unwrap() error { return e.err }

// busyTimeout is how long a statement waits for another process's write
// lock on the file before SQLite gives up (the busy_timeout pragma).
const busyTimeout = "10 s"

// explainAt puts err, an error of SQLite's on the ledger at path, in
// words (see Explained). Any other error, or one explained already, is
// returned as it is.
func explainAt(path string, err error) error {
	var se *sqlite.Error
	var ex *Explained
	if err == nil || errors.As(err, &ex) || !errors.As(err, &se) {
		return err
	}
	var msg string
	switch se.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		msg = fmt.Sprintf("%s stayed locked by another process for over %s (an sqlite3 shell, or another tool, with a transaction open on it): end that, then run again", path, busyTimeout)
	case sqlite3.SQLITE_NOTADB:
		msg = fmt.Sprintf("%s is not an SQLite file, so not a ledger: pass --ledger the ledger's path (or a new file's)", path)
	case sqlite3.SQLITE_CORRUPT:
		msg = fmt.Sprintf("%s is damaged (SQLite found it malformed): restore it from a backup, or move it aside for a new ledger, which `ledger import RESULTS...` fills from past results files", path)
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_AUTH:
		msg = fmt.Sprintf("%s cannot be written: check the permissions of the file, of its -wal and -shm files beside it, and of its folder", path)
	case sqlite3.SQLITE_FULL:
		msg = fmt.Sprintf("the disk holding %s is full: free some space, then run again", path)
	case sqlite3.SQLITE_IOERR:
		msg = fmt.Sprintf("the disk failed to read or write %s: check the disk, then run again", path)
	default:
		return err
	}
	return &Explained{msg, err}
}

// explain is explainAt for the ledger's own file, on *err (a store's
// methods defer it).
func (s *SQLite) explain(err *error) {
	if !s.pg {
		*err = explainAt(s.path, *err)
	}
}
