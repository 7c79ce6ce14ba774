package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// Schema is the ledger's SQLite schema; `sqlite3 ledger.db .schema` shows
// the same. Times are unix milliseconds.
const Schema = `
CREATE TABLE IF NOT EXISTS people (
  target       TEXT NOT NULL,     -- base URL and key fingerprint, as the results file's run line
  key          TEXT NOT NULL,     -- "email:..." or "internal_id:..."
  customer_id  TEXT NOT NULL DEFAULT '',
  campaign     TEXT NOT NULL DEFAULT '',
  request_hash TEXT NOT NULL DEFAULT '', -- xxHash of the mapped request, card fields left out
  status       TEXT NOT NULL DEFAULT '', -- created, existing; '' while only claimed
  first_run    INTEGER NOT NULL DEFAULT 0,
  last_run     INTEGER NOT NULL DEFAULT 0,
  first_at     INTEGER NOT NULL DEFAULT 0,
  last_at      INTEGER NOT NULL DEFAULT 0,
  claimed_by   INTEGER NOT NULL DEFAULT 0,  -- the run holding the key, 0 for none
  claimed_at   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (target, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS people_key ON people (key);
CREATE TABLE IF NOT EXISTS runs (
  id       INTEGER PRIMARY KEY,
  target   TEXT NOT NULL,
  input    TEXT NOT NULL,
  results  TEXT NOT NULL,
  host     TEXT NOT NULL,
  pid      INTEGER NOT NULL,
  started  INTEGER NOT NULL,
  ended    INTEGER NOT NULL DEFAULT 0,
  created  INTEGER NOT NULL DEFAULT 0,
  existing INTEGER NOT NULL DEFAULT 0,
  changed  INTEGER NOT NULL DEFAULT 0,
  invalid  INTEGER NOT NULL DEFAULT 0,
  failed   INTEGER NOT NULL DEFAULT 0,
  in_doubt INTEGER NOT NULL DEFAULT 0,
  exit     INTEGER NOT NULL DEFAULT -1
);
`

// SQLite is a Store in one SQLite file (WAL mode, so that importers on
// one machine share it).
type SQLite struct {
	db   *sql.DB
	host string
	// Statements of the hot paths, compiled once (compiling each time
	// cost as much as running them).
	sel, ins, take, complete, release *sql.Stmt
}

const (
	selectSQL = `SELECT customer_id, campaign, request_hash, status, first_run, last_run, first_at, last_at, claimed_by, claimed_at
		FROM people WHERE target=? AND key=?`
	insertSQL  = `INSERT INTO people (target, key, claimed_by, claimed_at) VALUES (?, ?, ?, ?)`
	takeSQL    = `UPDATE people SET claimed_by=?, claimed_at=? WHERE target=? AND key=?`
	releaseSQL = `DELETE FROM people WHERE target=? AND key=? AND status='' AND claimed_by=?`
)

// OpenSQLite opens, or creates, the ledger at path (":memory:" for one
// that lives as long as the process, such as the in-process sandbox's).
func OpenSQLite(path string) (*SQLite, error) {
	dsn := ":memory:"
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("ledger %s: %w", path, err)
		}
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-1024)&_txlock=immediate"
	}
	var db *sql.DB
	// Two importers starting at once on a new ledger race to set it up:
	// switching to WAL takes the file for a moment, and the other is told
	// SQLITE_BUSY at once, whatever busy_timeout says. It tries again.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var err error
		if db, err = sql.Open("sqlite", dsn); err != nil {
			return nil, fmt.Errorf("ledger %s: %w", path, err)
		}
		// One connection: this process's claims queue in Go, rather than
		// in SQLite's busy handler, which sleeps (one database, too, for
		// :memory:). Other processes wait on busy_timeout.
		db.SetMaxOpenConns(1)
		_, err = db.Exec(Schema)
		if err == nil {
			break
		}
		db.Close()
		if !strings.Contains(err.Error(), "SQLITE_BUSY") || time.Now().After(deadline) {
			return nil, fmt.Errorf("ledger %s: not a ledger, or not writable: %w", path, err)
		}
	}
	host, _ := os.Hostname()
	l := &SQLite{db: db, host: host}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&l.sel, selectSQL}, {&l.ins, insertSQL}, {&l.take, takeSQL}, {&l.complete, completeSQL}, {&l.release, releaseSQL}} {
		var err error
		if *p.st, err = db.Prepare(p.sql); err != nil {
			db.Close()
			return nil, fmt.Errorf("ledger %s: %w", path, err)
		}
	}
	return l, nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// StartRun records a run and returns its id.
func (s *SQLite) StartRun(ctx context.Context, r Run) (int64, error) {
	if r.Started.IsZero() {
		r.Started = time.Now()
	}
	if r.PID == 0 {
		r.PID = os.Getpid()
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO runs (target, input, results, host, pid, started) VALUES (?, ?, ?, ?, ?, ?)`,
		r.Target, r.Input, r.Results, s.host, r.PID, ms(r.Started))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// LastRun returns the latest run on the results file at path.
func (s *SQLite) LastRun(ctx context.Context, results string) (Run, bool, error) {
	var r Run
	var started, ended int64
	err := s.db.QueryRowContext(ctx, `SELECT id, target, input, results, pid, started, ended, exit FROM runs WHERE results=? ORDER BY id DESC LIMIT 1`, results).
		Scan(&r.ID, &r.Target, &r.Input, &r.Results, &r.PID, &started, &ended, &r.Exit)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, err
	}
	r.Started, r.Ended = fromMS(started), fromMS(ended)
	return r, true, nil
}

// EndRun records a run's counts and exit code.
func (s *SQLite) EndRun(ctx context.Context, r Run) error {
	if r.Ended.IsZero() {
		r.Ended = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `UPDATE runs SET ended=?, created=?, existing=?, changed=?, invalid=?, failed=?, in_doubt=?, exit=? WHERE id=?`,
		ms(r.Ended), r.Created, r.Existing, r.Changed, r.Invalid, r.Failed, r.InDoubt, r.Exit, r.ID)
	return err
}

// alive says whether run is still going: not ended, and its process is
// there on this host. A run on another host counts as alive (SQLite is
// for one machine; a shared ledger is Postgres's).
func (s *SQLite) alive(ctx context.Context, tx *sql.Tx, run int64) bool {
	var host string
	var pid int
	var ended int64
	if err := tx.QueryRowContext(ctx, `SELECT host, pid, ended FROM runs WHERE id=?`, run).Scan(&host, &pid, &ended); err != nil {
		return false
	}
	if ended != 0 {
		return false
	}
	if host != s.host {
		return true
	}
	return pid == os.Getpid() || syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}

// ClaimMany claims many keys for run in one transaction: the importer
// gathers the claims of its workers, so that a commit serves dozens.
func (s *SQLite) ClaimMany(ctx context.Context, target string, keys []string, run int64) ([]Claim, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := make([]Claim, len(keys))
	for i, key := range keys {
		if out[i], err = s.claimIn(ctx, tx, target, key, run); err != nil {
			return nil, err
		}
	}
	return out, tx.Commit()
}

// claimIn is one claim inside tx.
func (s *SQLite) claimIn(ctx context.Context, tx *sql.Tx, target, key string, run int64) (Claim, error) {
	var p Person
	var firstAt, lastAt, claimedBy, claimedAt int64
	err := tx.StmtContext(ctx, s.sel).QueryRowContext(ctx, target, key).
		Scan(&p.CustomerID, &p.Campaign, &p.RequestHash, &p.Status, &p.FirstRun, &p.LastRun, &firstAt, &lastAt, &claimedBy, &claimedAt)
	now := time.Now()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.StmtContext(ctx, s.ins).ExecContext(ctx, target, key, run, ms(now)); err != nil {
			return Claim{}, err
		}
		return Claim{Claimed: true}, nil
	case err != nil:
		return Claim{}, err
	}
	p.Target, p.Key, p.FirstAt, p.LastAt = target, key, fromMS(firstAt), fromMS(lastAt)
	if p.Status != "" {
		return Claim{Known: &p}, nil
	}
	c := Claim{Claimed: true}
	switch {
	case claimedBy == run:
		// Already this run's (a row retried).
	case claimedBy != 0 && s.alive(ctx, tx, claimedBy):
		return Claim{HeldBy: claimedBy}, nil
	case claimedBy != 0:
		c.Stale, c.StaleSince = true, fromMS(claimedAt)
	}
	if _, err := tx.StmtContext(ctx, s.take).ExecContext(ctx, run, ms(now), target, key); err != nil {
		return Claim{}, err
	}
	return c, nil
}

// completeSQL records a person as created or existing: a customer id
// already known stays (the first create wins), the request hash and the
// last run follow the latest.
const completeSQL = `INSERT INTO people (target, key, customer_id, campaign, request_hash, status, first_run, last_run, first_at, last_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (target, key) DO UPDATE SET
		  customer_id = CASE WHEN people.status = '' THEN excluded.customer_id ELSE people.customer_id END,
		  campaign = CASE WHEN people.status = '' OR people.campaign = '' THEN excluded.campaign ELSE people.campaign END,
		  request_hash = CASE WHEN excluded.request_hash = '' THEN people.request_hash ELSE excluded.request_hash END,
		  status = CASE WHEN people.status = '' THEN excluded.status ELSE people.status END,
		  first_run = CASE WHEN people.first_run = 0 THEN excluded.first_run ELSE people.first_run END,
		  first_at = CASE WHEN people.first_at = 0 THEN excluded.first_at ELSE people.first_at END,
		  last_run = excluded.last_run, last_at = excluded.last_at, claimed_by = 0, claimed_at = 0`

// Lookup returns the person key names on target, or nil.
func (s *SQLite) Lookup(ctx context.Context, target, key string) (*Person, error) {
	ps, err := s.people(ctx, `WHERE target=? AND key=? AND status<>''`, target, key)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	return &ps[0], nil
}

func (s *SQLite) people(ctx context.Context, where string, args ...any) ([]Person, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT target, key, customer_id, campaign, request_hash, status, first_run, last_run, first_at, last_at FROM people `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Person
	for rows.Next() {
		var p Person
		var first, last int64
		if err := rows.Scan(&p.Target, &p.Key, &p.CustomerID, &p.Campaign, &p.RequestHash, &p.Status, &p.FirstRun, &p.LastRun, &first, &last); err != nil {
			return nil, err
		}
		p.FirstAt, p.LastAt = fromMS(first), fromMS(last)
		out = append(out, p)
	}
	return out, rows.Err()
}

// Show returns key on every target.
func (s *SQLite) Show(ctx context.Context, key string) ([]Person, error) {
	return s.people(ctx, `WHERE key=? ORDER BY target`, key)
}

// Stats counts people per target and campaign.
func (s *SQLite) Stats(ctx context.Context) ([]Stat, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT target, campaign, count(*), max(last_at) FROM people WHERE status<>'' GROUP BY target, campaign ORDER BY target, campaign`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Stat
	for rows.Next() {
		var st Stat
		var last int64
		if err := rows.Scan(&st.Target, &st.Campaign, &st.People, &last); err != nil {
			return nil, err
		}
		st.LastAt = fromMS(last)
		out = append(out, st)
	}
	return out, rows.Err()
}

// Runs lists the runs, oldest first.
func (s *SQLite) Runs(ctx context.Context) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, target, input, results, pid, started, ended, created, existing, changed, invalid, failed, in_doubt, exit FROM runs ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var started, ended int64
		if err := rows.Scan(&r.ID, &r.Target, &r.Input, &r.Results, &r.PID, &started, &ended, &r.Created, &r.Existing, &r.Changed, &r.Invalid, &r.Failed, &r.InDoubt, &r.Exit); err != nil {
			return nil, err
		}
		r.Started, r.Ended = fromMS(started), fromMS(ended)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Forget removes key on every target.
func (s *SQLite) Forget(ctx context.Context, key string) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM people WHERE key=?`, key)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ForgetRun removes the people a run created first.
func (s *SQLite) ForgetRun(ctx context.Context, run int64) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM people WHERE first_run=?`, run)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// Settle records many outcomes in one transaction: done as created or
// existing, released as not created. The importer calls it once per
// journal flush.
func (s *SQLite) Settle(ctx context.Context, run int64, done []Person, released []Person) error {
	if len(done) == 0 && len(released) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := ms(time.Now())
	for _, p := range done {
		at := ms(p.LastAt)
		if at == 0 {
			at = now
		}
		if _, err := tx.StmtContext(ctx, s.complete).ExecContext(ctx, p.Target, p.Key, p.CustomerID, p.Campaign, p.RequestHash, p.Status, run, run, at, at); err != nil {
			return err
		}
	}
	for _, p := range released {
		if _, err := tx.StmtContext(ctx, s.release).ExecContext(ctx, p.Target, p.Key, run); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// ReleaseRun drops run's claims on target except those in keep (rows
// sent whose outcome is not known: the next run reconciles them). A run
// calls it at its end: keys it claimed and never sent are free again.
func (s *SQLite) ReleaseRun(ctx context.Context, target string, run int64, keep map[string]bool) error {
	rows, err := s.db.QueryContext(ctx, `SELECT key FROM people WHERE target=? AND claimed_by=? AND status=''`, target, run)
	if err != nil {
		return err
	}
	var drop []Person
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return err
		}
		if !keep[k] {
			drop = append(drop, Person{Target: target, Key: k})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	return s.Settle(ctx, run, nil, drop)
}

// LookupMany returns, for each key, the person target has under it, or
// nil: one read for a batch of rows.
func (s *SQLite) LookupMany(ctx context.Context, target string, keys []string) ([]*Person, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := make([]*Person, len(keys))
	sel := tx.StmtContext(ctx, s.sel)
	for i, key := range keys {
		var p Person
		var firstAt, lastAt, claimedBy, claimedAt int64
		err := sel.QueryRowContext(ctx, target, key).
			Scan(&p.CustomerID, &p.Campaign, &p.RequestHash, &p.Status, &p.FirstRun, &p.LastRun, &firstAt, &lastAt, &claimedBy, &claimedAt)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if p.Status != "" {
			p.Target, p.Key, p.FirstAt, p.LastAt = target, key, fromMS(firstAt), fromMS(lastAt)
			out[i] = &p
		}
	}
	return out, nil
}
