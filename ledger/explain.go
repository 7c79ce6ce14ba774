package ledger

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Explained is an error of SQLite's or of Postgres's, in the operator's
// words: what happened to the ledger, and what to do. Unwrap gives the
// driver's.
type Explained struct {
	msg string
	err error
}

func (e *Explained) Error() string { return e.msg }
func (e *Explained) Unwrap() error { return e.err }

// busyTimeout is how long a statement waits for another process's write
// lock on the file before SQLite gives up (the busy_timeout pragma).
const busyTimeout = 10 * time.Second

// explainAt puts err, an error of SQLite's on the ledger at path, in
// words (see Explained). Any other error, or one explained already, is
// returned as it is.
func explainAt(path string, err error) error {
	var ex *Explained
	if err == nil || errors.As(err, &ex) {
		return err
	}
	var msg string
	switch code(err) {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		msg = fmt.Sprintf("%s stayed locked by another process for over %.0f s (an sqlite3 shell, or another tool, with a transaction open on it): end that, then run again", path, busyTimeout.Seconds())
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

// code is the primary result code of err, an error of SQLite's (of an
// extended one, its low byte), or -1 for any other error.
func code(err error) int {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return -1
	}
	return se.Code() & 0xff
}

// explainPG puts err, of the Postgres ledger at name (its URL without
// the password), in words (see Explained): the server out of reach, or
// refusing. Any other error, or one explained already, is returned as it
// is.
func explainPG(name string, err error) error {
	var ex *Explained
	if err == nil || errors.As(err, &ex) {
		return err
	}
	where, db := "the server", ""
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Config != nil {
		where, db = net.JoinHostPort(ce.Config.Host, strconv.Itoa(int(ce.Config.Port))), ce.Config.Database
	}
	var msg string
	var pe *pgconn.PgError
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		switch pe.Code {
		case "28P01", "28000":
			msg = "PostgreSQL refused the user or its password: check them in the URL"
		case "3D000":
			msg = fmt.Sprintf("the server has no database %q: create it (createdb %s), or name another in the URL", db, db)
		case "42501":
			msg = "the user may not create or change the ledger's tables: grant it CREATE on the database's public schema, or connect as the database's owner"
		case "53300":
			msg = "the server has all the connections it allows (max_connections; an importer uses up to 4): run again later, or raise the limit"
		case "57P01", "57P02", "57P03":
			msg = "the server is shutting down or starting up: run again once it is up"
		default:
			return err
		}
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("nothing answers at %s: check the host and the port in the URL, and that PostgreSQL runs there", where)
	case errors.As(err, &dns) && dns.IsNotFound:
		msg = fmt.Sprintf("no host is named %s: check the URL", dns.Name)
	case errors.As(err, &ne) && ne.Timeout():
		msg = fmt.Sprintf("%s did not answer in time: check the host, the port, and any firewall between", where)
	default:
		return err
	}
	return &Explained{name + ": " + msg, err}
}

// openErr is why the ledger at name did not open: err in words when
// explained (explainAt, explainPG), else after what.
func openErr(name string, err error, what string) error {
	var ex *Explained
	if errors.As(err, &ex) {
		return fmt.Errorf("ledger: %w", err)
	}
	return fmt.Errorf("ledger %s: %s%w", name, what, err)
}

// explain puts *err in words (explainAt, explainPG) for the ledger's
// own file or server: a store's methods defer it.
func (s *SQLite) explain(err *error) {
	if s.pg {
		*err = explainPG(s.path, *err)
		return
	}
	*err = explainAt(s.path, *err)
}
