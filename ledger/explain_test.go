package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/internal/pgtest"
	"modernc.org/sqlite"
)

// checkExplained asserts that err is SQLite's in words: an Explained
// naming path and saying want, with SQLite's own error (its code, its
// text) kept behind it, not in the message.
func checkExplained(t *testing.T, err error, path, want string) {
	t.Helper()
	var ex *Explained
	var se *sqlite.Error
	switch {
	case err == nil:
		t.Fatalf("no error, want %q", want)
	case !errors.As(err, &ex):
		t.Fatalf("%q: not explained, want %q", err, want)
	case !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want):
		t.Errorf("%q: want %s and %q in it", err, path, want)
	case !errors.As(err, &se):
		t.Errorf("%q: SQLite's error is not behind it", err)
	}
	if msg := err.Error(); se != nil && (strings.Contains(msg, "SQLITE") || strings.Contains(msg, fmt.Sprintf("(%d)", se.Code()))) {
		t.Errorf("%q: SQLite's own words in the message", msg)
	}
}

// TestExplainedErrors: the errors of SQLite an operator can meet (a file
// that is not a ledger, a damaged one, one another process keeps locked,
// one that cannot be written) name the file and what to do, in a store's
// methods and at opening.
func TestExplainedErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	t.Run("not a ledger", func(t *testing.T) {
		path := filepath.Join(dir, "notes.db")
		if err := os.WriteFile(path, []byte(strings.Repeat("a spreadsheet, not a ledger\n", 200)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := OpenSQLite(path)
		checkExplained(t, err, path, "is not an SQLite file")
	})

	t.Run("damaged", func(t *testing.T) {
		s, path := openIn(t, dir, "damaged.db")
		done := make([]Person, 2000)
		for i := range done {
			done[i] = Person{Target: "t", Key: fmt.Sprintf("email:p%05d@example.com", i), CustomerID: fmt.Sprint(i), Status: "created", Request: strings.Repeat("x", 300)}
		}
		if err := s.Settle(ctx, 1, done, nil); err != nil {
			t.Fatal(err)
		}
		s.Close() // its log copied into the file, and gone
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for off := 4096; off < len(b); off += 4096 {
			copy(b[off:], "\xff\xff\xff\xff\xff\xff\xff\xff") // each page's header: no page of SQLite's
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err = OpenSQLite(path); err == nil {
			defer s.Close()
			_, err = s.Stats(ctx)
		}
		checkExplained(t, err, path, "is damaged")
	})

	// The store waits 10 s for another process's lock (busy_timeout);
	// a connection of the test's waits for none, and is told the same.
	t.Run("locked", func(t *testing.T) {
		_, path := openIn(t, dir, "locked.db")
		holder := rawConn(t, path, "")
		if _, err := holder.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		defer holder.ExecContext(ctx, "ROLLBACK")
		other := rawConn(t, path, "&_pragma=busy_timeout(0)")
		_, err := other.ExecContext(ctx, "BEGIN IMMEDIATE")
		checkExplained(t, explainAt(path, err), path, "stayed locked by another process")
	})

	t.Run("read-only", func(t *testing.T) {
		s, path := openIn(t, dir, "ro.db")
		s.Close()
		ro := rawConn(t, path, "&mode=ro")
		_, err := ro.ExecContext(ctx, "INSERT INTO targets (target) VALUES ('t')")
		checkExplained(t, explainAt(path, err), path, "cannot be written")
	})

	// Its folder cannot be made: a file is in the way (permissions, the
	// usual cause, do not stop root, which CI runs as).
	t.Run("no folder", func(t *testing.T) {
		file := filepath.Join(dir, "notes.txt")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(file, "state", "ledger.db")
		_, err := OpenSQLite(path)
		want := "ledger " + path + ": its folder cannot be made (" + file + ": not a directory): pass --ledger a path in a folder this user can write"
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	})

	t.Run("other errors as they are", func(t *testing.T) {
		err := fmt.Errorf("claim: %w", context.DeadlineExceeded)
		if got := explainAt("x.db", err); got != err {
			t.Errorf("explainAt(%q) = %q, want it unchanged", err, got)
		}
		s := newLedger(t)
		_, err = s.db.ExecContext(ctx, "SELECT no_such_column FROM people")
		if got := explainAt(s.path, err); got != err || err == nil {
			t.Errorf("explainAt(%v) = %v, want it unchanged", err, got)
		}
	})
}

// openIn opens a new ledger named name in dir, closed when the test
// ends (closing twice is allowed), and returns its path too.
func openIn(t *testing.T, dir, name string) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// rawConn is one connection of the test's own to the SQLite file at path,
// with query (URL parameters, "&..."), closed when the test ends.
func rawConn(t *testing.T, path, query string) *sql.Conn {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=journal_mode(WAL)"+query)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); db.Close() })
	return c
}

// TestExplainedPostgresErrors: a Postgres ledger out of reach, or
// refusing the importer, is named (without its password) with what to
// do: nothing listening, no such database, a user that may not create
// the ledger's tables.
func TestExplainedPostgresErrors(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	_, err = OpenPostgres(ctx, "postgres://ledger:secret@"+closed+"/ledger?sslmode=disable")
	checkExplainedPG(t, err, "postgres://ledger:***@"+closed+"/ledger", "nothing answers at "+closed+": check the host and the port")

	dsn := pgtest.Start(t)
	_, err = OpenPostgres(ctx, strings.Replace(dsn, "/postgres?", "/nightly?", 1))
	checkExplainedPG(t, err, "", `the server has no database "nightly": create it (createdb nightly)`)

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE ROLE reader LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC"); err != nil {
		t.Fatal(err)
	}
	_, err = OpenPostgres(ctx, strings.Replace(dsn, "//ledger@", "//reader:pw@", 1))
	checkExplainedPG(t, err, "postgres://reader:***@", "the user may not create or change the ledger's tables")

	// A user the server asks a password of (the test server trusts
	// loopback for the others), given the wrong one.
	var hba string
	if err := db.QueryRowContext(ctx, "SHOW hba_file").Scan(&hba); err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, append([]byte("host all guarded 127.0.0.1/32 scram-sha-256\n"), rules...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "SET password_encryption = 'scram-sha-256'; CREATE ROLE guarded LOGIN PASSWORD 'right'; SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	guarded := strings.Replace(dsn, "//ledger@", "//guarded:secret@", 1)
	// The server reloads its rules after the call returns: until then it
	// trusts the user, who may then not create the tables.
	_, err = OpenPostgres(ctx, guarded)
	for i := 0; i < 50 && err != nil && strings.Contains(err.Error(), "may not create"); i++ {
		time.Sleep(20 * time.Millisecond)
		_, err = OpenPostgres(ctx, guarded)
	}
	checkExplainedPG(t, err, "postgres://guarded:***@", "PostgreSQL refused the user or its password: check them in the URL")
}

// checkExplainedPG asserts that err is Postgres's in words: an Explained
// naming the ledger (name), saying want, without the password, with the
// driver's error behind it.
func checkExplainedPG(t *testing.T, err error, name, want string) {
	t.Helper()
	var ex *Explained
	switch {
	case err == nil:
		t.Errorf("no error, want %q", want)
	case !errors.As(err, &ex):
		t.Errorf("%q: not explained, want %q", err, want)
	case !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret"):
		t.Errorf("%q: want %s and %q in it, and no password", err, name, want)
	case errors.Unwrap(ex) == nil || strings.Contains(err.Error(), "failed to connect") || strings.Contains(err.Error(), "SQLSTATE"):
		t.Errorf("%q: the driver's error is not behind it, or its words are in it", err)
	}
}
