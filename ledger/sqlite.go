package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Schema is the ledger's SQLite schema (version 5); `sqlite3 ledger.db
// .schema` shows the same. Times are unix milliseconds.
//
// A person is one row of people, keyed by match key first: `ledger show`
// reads a key on every target without a second index (which would cost
// every claim a second write). Targets are numbered in targets (a base
// URL and key fingerprint is 70 bytes: in every row, it halved how many
// fit a page).
//
// A claim is a row of claims (version 5): a claiming transaction writes
// one, holding the hashes of the keys it claimed, and the run's outcomes
// drop them from it (the row goes when it holds none). A new person's
// row is then written once, at its outcome; as a row of people (version
// 4, and Postgres still), its claim was a second write to a page of its
// own. In SQLite, people's claimed_by and claimed_at stay 0.
//
// What was sent is in requests, a table of its own, so that people's rows
// stay small. Its rows are numbered in the order they are written, and a
// person points at its own (request_id; version 4): a transaction's new
// requests then fill the table's last pages, where keyed by person (version
// 3) each went to a page of its own, half of what recording an outcome
// wrote. Triggers drop a request when its person gets another or is
// forgotten. `report --changed-csv` compares its request with
// changed_request.
const Schema = `
CREATE TABLE IF NOT EXISTS targets (
  id     INTEGER PRIMARY KEY,
  target TEXT NOT NULL UNIQUE      -- base URL and key fingerprint, as the results file's run line
);
CREATE TABLE IF NOT EXISTS people (
  key          TEXT NOT NULL,      -- "email:..." or "internal_id:..."
  target_id    INTEGER NOT NULL,   -- targets.id
  customer_id  TEXT NOT NULL DEFAULT '',
  campaign     TEXT NOT NULL DEFAULT '',
  request_hash TEXT NOT NULL DEFAULT '', -- xxHash of the mapped request, card fields left out
  status       TEXT NOT NULL DEFAULT '', -- created, existing; '' while only claimed
  first_run    INTEGER NOT NULL DEFAULT 0,
  last_run     INTEGER NOT NULL DEFAULT 0,
  first_at     INTEGER NOT NULL DEFAULT 0,
  last_at      INTEGER NOT NULL DEFAULT 0,
  claimed_by   INTEGER NOT NULL DEFAULT 0, -- 0 (version 4's claims, Postgres's)
  claimed_at   INTEGER NOT NULL DEFAULT 0,
  request_id   INTEGER NOT NULL DEFAULT 0, -- requests.id of its request, 0 for none
  PRIMARY KEY (key, target_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims (
  id        INTEGER PRIMARY KEY,
  target_id INTEGER NOT NULL,      -- targets.id
  run       INTEGER NOT NULL,      -- runs.id of the run sending their requests
  at        INTEGER NOT NULL,
  hashes    BLOB NOT NULL          -- the claimed keys' xxHash64, 8 bytes each, little-endian
);
CREATE TABLE IF NOT EXISTS requests (
  id              INTEGER PRIMARY KEY, -- people.request_id
  key             TEXT NOT NULL,     -- people.key (for readers: the table has no index on it)
  target_id       INTEGER NOT NULL,  -- people.target_id
  request         TEXT NOT NULL DEFAULT '', -- the mapped request last sent, JSON, card fields left out
  changed_request TEXT NOT NULL DEFAULT '', -- the mapped request a later run found changed and did not send
  changed_run     INTEGER NOT NULL DEFAULT 0,
  changed_at      INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS people_request_replaced AFTER UPDATE OF request_id ON people
  WHEN old.request_id <> 0 AND old.request_id <> new.request_id
  BEGIN DELETE FROM requests WHERE id = old.request_id; END;
CREATE TRIGGER IF NOT EXISTS people_forgotten AFTER DELETE ON people
  WHEN old.request_id <> 0
  BEGIN DELETE FROM requests WHERE id = old.request_id; END;
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
CREATE VIEW IF NOT EXISTS ledger AS
  SELECT t.target, p.key, p.customer_id, p.campaign, p.request_hash, p.status, p.first_run, p.last_run, p.first_at, p.last_at
  FROM people p JOIN targets t ON t.id = p.target_id WHERE p.status <> '';
`

// schemaVersion is PRAGMA user_version of a ledger with Schema.
const schemaVersion = 5

// SQLite is a Store in one SQLite file (WAL mode, so that importers on
// one machine share it).
type SQLite struct {
	db   *sql.DB
	host string
	path string // the file, as given (errors name it)
	// pg is set for a Postgres ledger (OpenPostgres): the same tables
	// and statements, with $n placeholders (see q), but claims in
	// people's rows (version 4's).
	pg bool
	// Statements of the hot paths, compiled once (compiling each time
	// cost as much as running them). The many-row ones, by kind and row
	// count, under mu, are compiled on a goroutine after the ledger opens
	// (compileAll), or when first needed before it comes to them (stmt).
	multi                             map[string]*sql.Stmt
	wanted                            map[string]string // multi's key -> query, to compile at the next begin
	take, release, unclaim, addTarget *sql.Stmt
	changed, addChanged, link         *sql.Stmt

	mu      sync.Mutex
	targets map[string]int64 // target -> targets.id, as known
	held    map[held]int64   // SQLite: the keys this process's runs claim -> claims.id

	// compiling is the goroutine compiling the many-row statements after
	// the ledger opens (see compileAll); stop ends it.
	compiling sync.WaitGroup
	stop      chan struct{}
	stopOnce  sync.Once
}

// q returns a statement in the ledger's dialect: SQLite's ? placeholders,
// or Postgres's $1, $2, ...
func (s *SQLite) q(query string) string {
	if !s.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// batchMax is the most rows one statement takes (ten columns each: well
// under SQLite's 32,766 variables).
const batchMax = 256

// OpenSQLite opens, or creates, the ledger at path (":memory:" for one
// that lives as long as the process, such as the in-process sandbox's).
// A ledger of version 1 (stop 4's: targets in every row, claims inside
// people) is converted in place, once.
func OpenSQLite(path string) (*SQLite, error) {
	dsn := ":memory:"
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				// "mkdir DIR: permission denied", in words.
				err = fmt.Errorf("its folder cannot be made (%s: %v): pass --ledger a path in a folder this user can write", pe.Path, pe.Err)
			}
			return nil, fmt.Errorf("ledger %s: %w", path, err)
		}
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")&_pragma=synchronous(NORMAL)&_pragma=cache_size(-1024)&_pragma=wal_autocheckpoint(8192)&_txlock=immediate"
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
		err = setUp(db)
		if err == nil {
			break
		}
		db.Close()
		if code(err) != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return nil, openErr(path, explainAt(path, err), "not a ledger, or not writable: ")
		}
	}
	host, _ := os.Hostname()
	l := &SQLite{db: db, host: host, path: path, targets: map[string]int64{}, held: map[held]int64{}, stop: make(chan struct{})}
	if err := l.prepare(); err != nil {
		db.Close()
		return nil, openErr(path, explainAt(path, err), "not a ledger, or not writable: ")
	}
	l.compiling.Go(l.compileAll)
	return l, nil
}

// setUp creates the schema, or converts a version 1 ledger to it, in one
// transaction.
func setUp(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version == schemaVersion {
		return tx.Commit()
	}
	// Version 1 kept the target in every row of people; version 2 lacks
	// the requests table, which Schema adds; version 3 keyed requests by
	// person, and people had no request_id; versions 1 to 4 kept claims
	// in people's rows (claimsFromRows).
	has := func(table, column string) (bool, error) {
		var n int
		err := tx.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name=?`, table, column).Scan(&n)
		return n > 0, err
	}
	v1, err := has("people", "target")
	if err != nil {
		return err
	}
	if v1 {
		if _, err := tx.Exec(`ALTER TABLE people RENAME TO people_v1; DROP INDEX IF EXISTS people_key`); err != nil {
			return err
		}
	} else if old, err := has("people", "key"); err != nil {
		return err
	} else if linked, err := has("people", "request_id"); err != nil {
		return err
	} else if old && !linked {
		if _, err := tx.Exec(`ALTER TABLE people ADD COLUMN request_id INTEGER NOT NULL DEFAULT 0`); err != nil {
			return err
		}
	}
	v3, err := has("requests", "key")
	if err != nil {
		return err
	}
	if numbered, err := has("requests", "id"); err != nil {
		return err
	} else if v3 = v3 && !numbered; v3 {
		if _, err := tx.Exec(`ALTER TABLE requests RENAME TO requests_v3`); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(Schema); err != nil {
		return err
	}
	if v1 {
		if _, err := tx.Exec(`
INSERT OR IGNORE INTO targets (target) SELECT DISTINCT target FROM people_v1;
INSERT INTO people (key, target_id, customer_id, campaign, request_hash, status, first_run, last_run, first_at, last_at, claimed_by, claimed_at)
  SELECT p.key, t.id, p.customer_id, p.campaign, p.request_hash, p.status, p.first_run, p.last_run, p.first_at, p.last_at, p.claimed_by, p.claimed_at
  FROM people_v1 p JOIN targets t ON t.target = p.target;
DROP TABLE people_v1;`); err != nil {
			return err
		}
	}
	if v3 {
		if _, err := tx.Exec(`
INSERT INTO requests (key, target_id, request, changed_request, changed_run, changed_at)
  SELECT key, target_id, request, changed_request, changed_run, changed_at FROM requests_v3 ORDER BY key, target_id;
UPDATE people SET request_id = r.id FROM requests r WHERE r.key = people.key AND r.target_id = people.target_id;
DROP TABLE requests_v3;`); err != nil {
			return err
		}
	}
	if err := claimsFromRows(tx); err != nil {
		return err
	}
	if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

const (
	// takeSQL takes a claim only from the holder the claim read saw: two
	// runs that saw one dead holder cannot both take it (Postgres runs
	// claims concurrently; SQLite serialises them anyway).
	takeSQL      = `UPDATE people SET claimed_by=?, claimed_at=? WHERE key=? AND target_id=? AND claimed_by=?`
	releaseSQL   = `DELETE FROM people WHERE key=? AND target_id=? AND status='' AND claimed_by=?`
	unclaimSQL   = `UPDATE people SET claimed_by=0, claimed_at=0 WHERE key=? AND target_id=? AND status<>'' AND claimed_by=?`
	addTargetSQL = `INSERT INTO targets (target) VALUES (?) ON CONFLICT (target) DO UPDATE SET target=excluded.target RETURNING id`
)

func peopleManySQL(n int) string {
	return `SELECT key, customer_id, campaign, request_hash, status, first_run, last_run, first_at, last_at, claimed_by, claimed_at
		FROM people WHERE target_id=? AND key IN (` + marks(n, 1) + `)`
}

// claimManySQL claims, on Postgres, the keys no row has yet: one write
// for a new person, and no read before it. The keys it returns are
// claimed.
func claimManySQL(n int) string {
	return `INSERT INTO people (key, target_id, claimed_by, claimed_at) VALUES ` + marks(n, 4) + `
		ON CONFLICT (key, target_id) DO NOTHING RETURNING key`
}

// completeManySQL records people as created or existing: a customer id
// already known stays (the first create wins), the request hash, the
// request and the last run follow the latest, and the claim is cleared.
func completeManySQL(n int) string {
	return `INSERT INTO people (key, target_id, customer_id, campaign, request_hash, status, first_run, last_run, first_at, last_at, request_id)
		VALUES ` + marks(n, 11) + `
		ON CONFLICT (key, target_id) DO UPDATE SET
		  customer_id = CASE WHEN people.status = '' THEN excluded.customer_id ELSE people.customer_id END,
		  campaign = CASE WHEN people.status = '' OR people.campaign = '' THEN excluded.campaign ELSE people.campaign END,
		  request_hash = CASE WHEN excluded.request_hash = '' THEN people.request_hash ELSE excluded.request_hash END,
		  request_id = CASE WHEN excluded.request_id = 0 THEN people.request_id ELSE excluded.request_id END,
		  status = CASE WHEN people.status = '' THEN excluded.status ELSE people.status END,
		  first_run = CASE WHEN people.first_run = 0 THEN excluded.first_run ELSE people.first_run END,
		  first_at = CASE WHEN people.first_at = 0 THEN excluded.first_at ELSE people.first_at END,
		  last_run = excluded.last_run, last_at = excluded.last_at, claimed_by = 0, claimed_at = 0`
}

// sentManySQL records the requests sent, at the end of the table; the
// people's request_id then points at them (completeManySQL), which drops
// the ones they had, and a change noted on those.
func sentManySQL(n int) string {
	return `INSERT INTO requests (key, target_id, request) VALUES ` + marks(n, 3) + ` RETURNING id, key`
}

const (
	// changedSQL records on a person's request the one a run found
	// changed and did not send; addChangedSQL, for a person with no
	// request recorded (filled in by ledger import), adds one to point at.
	changedSQL = `UPDATE requests SET changed_request=?, changed_run=?, changed_at=?
		WHERE id = (SELECT request_id FROM people WHERE key=? AND target_id=? AND request_id <> 0)`
	addChangedSQL = `INSERT INTO requests (key, target_id, changed_request, changed_run, changed_at)
		SELECT CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM people WHERE key=? AND target_id=?) RETURNING id`
	linkSQL = `UPDATE people SET request_id=? WHERE key=? AND target_id=?`
)

// marks is "?, ?, ?" for n, or n groups of "(?, ..)" of width w.
func marks(n, w int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", w), ", ") + ")"
	if w == 1 {
		one = "?"
	}
	return strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
}

// prepare compiles the single statements; the many-row ones are compiled
// after the ledger opens (compileAll), or when first needed (stmt).
func (s *SQLite) prepare() error {
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&s.take, takeSQL}, {&s.release, releaseSQL}, {&s.unclaim, unclaimSQL}, {&s.addTarget, addTargetSQL},
		{&s.changed, changedSQL}, {&s.addChanged, addChangedSQL}, {&s.link, linkSQL}} {
		var err error
		if *p.st, err = s.db.Prepare(s.q(p.sql)); err != nil {
			return err
		}
	}
	s.multi, s.wanted = map[string]*sql.Stmt{}, map[string]string{}
	return nil
}

// manySQL is the many-row statement of kind for n rows.
func (s *SQLite) manySQL(kind string, n int) string {
	switch kind {
	case "people":
		return s.q(peopleManySQL(n))
	case "claim":
		return s.q(claimManySQL(n))
	case "complete":
		return s.q(completeManySQL(n))
	}
	return s.q(sentManySQL(n))
}

// stmt is the many-row statement of kind for n rows (n a power of two),
// in tx. Compiling all of them (4 kinds, 9 sizes) before the ledger's
// opening returned cost every run 8-9 ms before its first claim, so
// compileAll compiles them after it. One it has not come to yet is
// compiled for tx alone, and noted; the next begin compiles it for good.
// (Compiling it for good here would wait for the only connection, which
// tx holds.)
func (s *SQLite) stmt(ctx context.Context, tx *sql.Tx, kind string, n int) (*sql.Stmt, error) {
	key := fmt.Sprint(kind, n)
	s.mu.Lock()
	st, ok := s.multi[key]
	if !ok {
		s.wanted[key] = s.manySQL(kind, n)
	}
	s.mu.Unlock()
	if ok {
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, s.manySQL(kind, n))
}

// compileAll compiles every many-row statement not compiled yet, one at a
// time between the ledger's transactions, until Close. Compiled as first
// needed in the middle of a run instead (see stmt), the largest statements'
// parse trees grew SQLite's heap at its fullest: 2-4 MiB more at the peak
// of a 100,000-row run, over the 64 MiB bar with a ledger of 1,000,000.
func (s *SQLite) compileAll() {
	kinds := []string{"complete", "sent", "people"} // SQLite claims in claims rows
	if s.pg {
		kinds = append(kinds, "claim")
	}
	for _, kind := range kinds {
		for n := 1; n <= batchMax; n *= 2 {
			select {
			case <-s.stop:
				return
			default:
			}
			key := fmt.Sprint(kind, n)
			s.mu.Lock()
			_, done := s.multi[key]
			s.mu.Unlock()
			if done {
				continue
			}
			st, err := s.db.Prepare(s.manySQL(kind, n))
			if err != nil {
				return // closed; a statement still missing is compiled when needed
			}
			s.keep(key, st)
		}
	}
}

// begin compiles the statements the last transactions wanted (see stmt),
// then begins a transaction.
func (s *SQLite) begin(ctx context.Context) (*sql.Tx, error) {
	s.mu.Lock()
	wanted := s.wanted
	s.wanted = map[string]string{}
	s.mu.Unlock()
	for key, query := range wanted {
		st, err := s.db.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		s.keep(key, st)
	}
	return s.db.BeginTx(ctx, nil)
}

// keep adds st to the compiled statements as key, unless another
// goroutine compiled it first.
func (s *SQLite) keep(key string, st *sql.Stmt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.multi[key]; dup {
		st.Close()
		return
	}
	s.multi[key] = st
}

// chunk is the largest power of two not above n, up to batchMax: the
// size of the next statement for n rows.
func chunk(n int) int {
	c := batchMax
	for c > n {
		c /= 2
	}
	return c
}

// targetID returns target's number, adding it when add is true (0 when
// the ledger does not have it).
func (s *SQLite) targetID(ctx context.Context, tx *sql.Tx, target string, add bool) (int64, error) {
	s.mu.Lock()
	id, ok := s.targets[target]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	var err error
	if add {
		err = tx.StmtContext(ctx, s.addTarget).QueryRowContext(ctx, target).Scan(&id)
	} else {
		err = tx.QueryRowContext(ctx, s.q(`SELECT id FROM targets WHERE target=?`), target).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
	}
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.targets[target] = id
	s.mu.Unlock()
	return id, nil
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
func (s *SQLite) StartRun(ctx context.Context, r Run) (_ int64, err error) {
	defer s.explain(&err)
	if r.Started.IsZero() {
		r.Started = time.Now()
	}
	if r.PID == 0 {
		r.PID = os.Getpid()
	}
	var id int64
	err = s.db.QueryRowContext(ctx, s.q(`INSERT INTO runs (target, input, results, host, pid, started) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		r.Target, r.Input, r.Results, s.host, r.PID, ms(r.Started)).Scan(&id)
	return id, err
}

// LastRun returns the latest run on the results file at path.
func (s *SQLite) LastRun(ctx context.Context, results string) (_ Run, _ bool, err error) {
	defer s.explain(&err)
	var r Run
	var started, ended int64
	err = s.db.QueryRowContext(ctx, s.q(`SELECT id, target, input, results, pid, started, ended, exit FROM runs WHERE results=? ORDER BY id DESC LIMIT 1`), results).
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
func (s *SQLite) EndRun(ctx context.Context, r Run) (err error) {
	defer s.explain(&err)
	if r.Ended.IsZero() {
		r.Ended = time.Now()
	}
	_, err = s.db.ExecContext(ctx, s.q(`UPDATE runs SET ended=?, created=?, existing=?, changed=?, invalid=?, failed=?, in_doubt=?, exit=? WHERE id=?`),
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
	if err := tx.QueryRowContext(ctx, s.q(`SELECT host, pid, ended FROM runs WHERE id=?`), run).Scan(&host, &pid, &ended); err != nil {
		return false
	}
	return ended == 0 && s.running(host, pid)
}

// running says whether a run that has not ended, of host and pid, is
// running: one of another host counts as running (its process cannot be
// seen from here).
func (s *SQLite) running(host string, pid int) bool {
	return host != s.host || processAlive(pid)
}

// processAlive says whether the process pid on this host is alive (or a
// process that took its number since: the run then counts as alive).
func processAlive(pid int) bool {
	return pid == os.Getpid() || syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}

// claimed is a person's row with its claim.
type claimed struct {
	p      Person
	by, at int64
}

// read returns, in tx, the rows of keys on target tid, in statements of
// at most batchMax keys.
func (s *SQLite) read(ctx context.Context, tx *sql.Tx, target string, tid int64, keys []string) (map[string]claimed, error) {
	out := make(map[string]claimed, len(keys))
	for rest := keys; len(rest) > 0; {
		n := chunk(len(rest))
		args := make([]any, 0, n+1)
		args = append(args, tid)
		for _, k := range rest[:n] {
			args = append(args, k)
		}
		st, err := s.stmt(ctx, tx, "people", n)
		if err != nil {
			return nil, err
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var c claimed
			var firstAt, lastAt int64
			if err := rows.Scan(&c.p.Key, &c.p.CustomerID, &c.p.Campaign, &c.p.RequestHash, &c.p.Status, &c.p.FirstRun, &c.p.LastRun, &firstAt, &lastAt, &c.by, &c.at); err != nil {
				rows.Close()
				return nil, err
			}
			c.p.Target, c.p.FirstAt, c.p.LastAt = target, fromMS(firstAt), fromMS(lastAt)
			out[c.p.Key] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return out, nil
}

// ClaimMany claims many keys for run in one transaction: the importer
// claims a batch of rows at once, so that a commit serves hundreds. On
// SQLite that is claimSQLite. On Postgres, new keys are claimed by one
// insert that skips the rows there already; only those are read.
func (s *SQLite) ClaimMany(ctx context.Context, target string, keys []string, run int64, known bool) (_ []Claim, err error) {
	defer s.explain(&err)
	if !s.pg {
		return s.claimSQLite(ctx, target, keys, run, known)
	}
	tx, tid, err := s.claimTx(ctx, target)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	now := ms(time.Now())
	won := make(map[string]bool, len(keys))
	uniq := make([]string, 0, len(keys))
	for _, k := range keys {
		if !won[k] {
			won[k] = false
			uniq = append(uniq, k)
		}
	}
	slices.Sort(uniq) // the table's order: its pages met once each
	for rest := uniq; len(rest) > 0; {
		n := chunk(len(rest))
		args := make([]any, 0, 4*n)
		for _, k := range rest[:n] {
			args = append(args, k, tid, run, now)
		}
		st, err := s.stmt(ctx, tx, "claim", n)
		if err != nil {
			return nil, err
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			won[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	var there []string
	for _, k := range uniq {
		if !won[k] {
			there = append(there, k)
		}
	}
	have, err := s.read(ctx, tx, target, tid, there)
	if err != nil {
		return nil, err
	}
	out := make([]Claim, len(keys))
	for i, key := range keys {
		if won[key] {
			out[i] = Claim{Claimed: true}
			continue
		}
		c, ok := have[key]
		if !ok {
			return nil, fmt.Errorf("claim %s: neither inserted nor found", key)
		}
		isKnown := c.p.Status != ""
		switch {
		case isKnown && !known:
			p := c.p
			out[i] = Claim{Known: &p}
			continue
		case c.by == run:
			out[i] = Claim{Claimed: true, Known: ptr(c.p, isKnown)} // already this run's (a row retried)
			continue
		case c.by != 0 && s.alive(ctx, tx, c.by):
			out[i] = Claim{HeldBy: c.by}
			continue
		case c.by != 0 && !isKnown:
			// Taken over from a run that died holding it.
			out[i] = Claim{Claimed: true, Stale: true, StaleSince: fromMS(c.at), StaleRun: c.by}
		default:
			out[i] = Claim{Claimed: true, Known: ptr(c.p, isKnown)}
		}
		res, err := tx.StmtContext(ctx, s.take).ExecContext(ctx, run, now, key, tid, c.by)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			out[i] = Claim{HeldBy: -1} // another run took it first: claim again
			continue
		}
		c.by = run
		have[key] = c
	}
	return out, tx.Commit()
}

// claimTx begins a claiming transaction on target, and returns its
// number.
func (s *SQLite) claimTx(ctx context.Context, target string) (*sql.Tx, int64, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, 0, err
	}
	tid, err := s.targetID(ctx, tx, target, true)
	if err != nil {
		tx.Rollback()
		return nil, 0, err
	}
	return tx, tid, nil
}

// ptr is a copy of p on the heap when ok, or nil: allocated only then
// (&p would move every p to the heap, known or not).
func ptr(p Person, ok bool) *Person {
	if !ok {
		return nil
	}
	return new(p)
}

// Settle records many outcomes in one transaction: done as created or
// existing (their claims cleared), released as not created (run's claims
// dropped). The importer calls it at its journal's flushes.
func (s *SQLite) Settle(ctx context.Context, run int64, done []Person, released []Person) (err error) {
	defer s.explain(&err)
	if len(done) == 0 && len(released) == 0 {
		return nil
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.complete(ctx, tx, run, done); err != nil {
		return err
	}
	if !s.pg {
		gone, err := s.dropClaims(ctx, tx, run, done, released)
		if err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		s.mu.Lock()
		for k := range gone {
			delete(s.held, k)
		}
		s.mu.Unlock()
		return nil
	}
	for _, p := range released {
		tid, err := s.targetID(ctx, tx, p.Target, true)
		if err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, s.release).ExecContext(ctx, p.Key, tid, run); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, s.unclaim).ExecContext(ctx, p.Key, tid, run); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// complete records done, in tx, as created or existing: a customer id
// already known stays, and a claim in the person's row is cleared.
func (s *SQLite) complete(ctx context.Context, tx *sql.Tx, run int64, done []Person) error {
	now := ms(time.Now())
	// One statement for up to batchMax people; a person twice in one
	// statement would be an error ("ON CONFLICT DO UPDATE command cannot
	// affect row a second time"), so a repeat waits for the next.
	seen := make(map[[2]string]bool, min(len(done), batchMax))
	var args, sent []any // for each statement, reused
	for len(done) > 0 {
		// The longest run of done without a repeat, cut to a power of two.
		clear(seen)
		n := 0
		for n < len(done) && n < batchMax && !seen[[2]string{done[n].Target, done[n].Key}] {
			seen[[2]string{done[n].Target, done[n].Key}] = true
			n++
		}
		n = chunk(n)
		this := done[:n]
		done = done[n:]
		// The requests first: the people point at them. A person is in
		// this statement once, so its key names its request.
		sent = sent[:0]
		for _, p := range this {
			if p.Request != "" {
				tid, err := s.targetID(ctx, tx, p.Target, true)
				if err != nil {
					return err
				}
				sent = append(sent, p.Key, tid, p.Request)
			}
		}
		ids, err := s.sent(ctx, tx, sent)
		if err != nil {
			return err
		}
		args = args[:0]
		for _, p := range this {
			tid, err := s.targetID(ctx, tx, p.Target, true)
			if err != nil {
				return err
			}
			at := ms(p.LastAt)
			if at == 0 {
				at = now
			}
			var id int64
			if p.Request != "" {
				id = ids[p.Key]
			}
			args = append(args, p.Key, tid, p.CustomerID, p.Campaign, p.RequestHash, p.Status, run, run, at, at, id)
		}
		st, err := s.stmt(ctx, tx, "complete", len(this))
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// sent records requests (rows of key, target id, request: of different
// keys) and returns their ids by key.
func (s *SQLite) sent(ctx context.Context, tx *sql.Tx, args []any) (map[string]int64, error) {
	ids := make(map[string]int64, len(args)/3)
	for len(args) > 0 {
		n := chunk(len(args) / 3)
		st, err := s.stmt(ctx, tx, "sent", n)
		if err != nil {
			return nil, err
		}
		rows, err := st.QueryContext(ctx, args[:n*3]...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			var key string
			if err := rows.Scan(&id, &key); err != nil {
				rows.Close()
				return nil, err
			}
			ids[key] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		args = args[n*3:]
	}
	return ids, nil
}

// NoteChanged records, for each person, the request a run found changed
// and did not send (Person.Request), beside the one last sent.
func (s *SQLite) NoteChanged(ctx context.Context, run int64, people []Person) (err error) {
	defer s.explain(&err)
	if len(people) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := ms(time.Now())
	seen := map[[2]string]bool{}
	for i := len(people) - 1; i >= 0; i-- { // the latest of a person's notes
		p := people[i]
		if seen[[2]string{p.Target, p.Key}] {
			continue
		}
		seen[[2]string{p.Target, p.Key}] = true
		tid, err := s.targetID(ctx, tx, p.Target, true)
		if err != nil {
			return err
		}
		at := ms(p.ChangedAt)
		if at == 0 {
			at = now
		}
		res, err := tx.StmtContext(ctx, s.changed).ExecContext(ctx, p.Request, run, at, p.Key, tid)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			continue
		}
		var id int64
		err = tx.StmtContext(ctx, s.addChanged).QueryRowContext(ctx, p.Key, tid, p.Request, run, at, p.Key, tid).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue // not in the ledger (forgotten since)
		}
		if err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, s.link).ExecContext(ctx, id, p.Key, tid); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Changed returns the people of target with a change noted and not sent:
// Request is what was last sent, ChangedRequest what was found since.
func (s *SQLite) Changed(ctx context.Context, target string) (_ []Person, err error) {
	defer s.explain(&err)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT p.key, p.customer_id, p.campaign, p.status, p.last_run, p.last_at, r.request, r.changed_request, r.changed_run, r.changed_at
		FROM people p JOIN requests r ON r.id = p.request_id JOIN targets t ON t.id = p.target_id
		WHERE t.target = ? AND r.changed_request <> '' ORDER BY p.key`), target)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Person
	for rows.Next() {
		p := Person{Target: target}
		var last, changed int64
		if err := rows.Scan(&p.Key, &p.CustomerID, &p.Campaign, &p.Status, &p.LastRun, &last, &p.Request, &p.ChangedRequest, &p.ChangedRun, &changed); err != nil {
			return nil, err
		}
		p.LastAt, p.ChangedAt = fromMS(last), fromMS(changed)
		out = append(out, p)
	}
	return out, rows.Err()
}

// Release drops run's claims of keys on target: a run calls it at its
// end for the keys it claimed and never sent.
func (s *SQLite) Release(ctx context.Context, target string, run int64, keys []string) (err error) {
	defer s.explain(&err)
	drop := make([]Person, len(keys))
	for i, k := range keys {
		drop[i] = Person{Target: target, Key: k}
	}
	return s.Settle(ctx, run, nil, drop)
}

// lookupMany returns, for each key, the person target has under it, or
// nil: one read for a batch of rows.
func (s *SQLite) lookupMany(ctx context.Context, target string, keys []string) ([]*Person, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := make([]*Person, len(keys))
	tid, err := s.targetID(ctx, tx, target, false)
	if err != nil || tid == 0 {
		return out, err
	}
	have, err := s.read(ctx, tx, target, tid, keys)
	if err != nil {
		return nil, err
	}
	for i, key := range keys {
		if c, ok := have[key]; ok && c.p.Status != "" {
			p := c.p
			out[i] = &p
		}
	}
	return out, nil
}

// Lookup returns the person key names on target, or nil.
func (s *SQLite) Lookup(ctx context.Context, target, key string) (_ *Person, err error) {
	defer s.explain(&err)
	ps, err := s.lookupMany(ctx, target, []string{key})
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

func (s *SQLite) people(ctx context.Context, where string, args ...any) ([]Person, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT t.target, p.key, p.customer_id, p.campaign, p.request_hash, p.status, p.first_run, p.last_run, p.first_at, p.last_at
		FROM people p JOIN targets t ON t.id = p.target_id `)+where, args...)
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
func (s *SQLite) Show(ctx context.Context, key string) (_ []Person, err error) {
	defer s.explain(&err)
	return s.people(ctx, `WHERE p.key=? AND p.status<>'' ORDER BY t.target`, key)
}

// Stats counts people per target and campaign.
func (s *SQLite) Stats(ctx context.Context) (_ []Stat, err error) {
	defer s.explain(&err)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT t.target, p.campaign, count(*), max(p.last_at) FROM people p JOIN targets t ON t.id = p.target_id
		WHERE p.status<>'' GROUP BY t.target, p.campaign ORDER BY t.target, p.campaign`))
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
func (s *SQLite) Runs(ctx context.Context) (_ []Run, err error) {
	defer s.explain(&err)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, target, input, results, host, pid, started, ended, created, existing, changed, invalid, failed, in_doubt, exit FROM runs ORDER BY id`))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var started, ended int64
		if err := rows.Scan(&r.ID, &r.Target, &r.Input, &r.Results, &r.Host, &r.PID, &started, &ended, &r.Created, &r.Existing, &r.Changed, &r.Invalid, &r.Failed, &r.InDoubt, &r.Exit); err != nil {
			return nil, err
		}
		r.Started, r.Ended = fromMS(started), fromMS(ended)
		r.Elsewhere = r.Host != s.host
		r.Killed = ended == 0 && !s.running(r.Host, r.PID)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	claims, err := s.claimsByRun(ctx)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Claims = claims[out[i].ID]
	}
	return out, nil
}

// claimsByRun counts the keys each run claims: in claims rows (SQLite),
// and in people's rows (Postgres, and claims an older version wrote into
// a SQLite ledger).
func (s *SQLite) claimsByRun(ctx context.Context) (map[int64]int64, error) {
	queries := []string{`SELECT claimed_by, count(*) FROM people WHERE claimed_by <> 0 GROUP BY claimed_by`}
	if !s.pg {
		queries = append(queries, `SELECT run, sum(length(hashes) / 8) FROM claims GROUP BY run`)
	}
	out := map[int64]int64{}
	for _, q := range queries {
		rows, err := s.db.QueryContext(ctx, q)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var run, n int64
			if err := rows.Scan(&run, &n); err != nil {
				rows.Close()
				return nil, err
			}
			out[run] += n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Forget removes key on every target (and its claims); it returns how
// many people it removed.
func (s *SQLite) Forget(ctx context.Context, key string) (_ int64, err error) {
	defer s.explain(&err)
	if !s.pg {
		return s.forgetSQLite(ctx, key)
	}
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM people WHERE key=? AND status<>''`), key)
	if err != nil {
		return 0, err
	}
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM people WHERE key=?`), key); err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ForgetRun removes the people a run created first.
func (s *SQLite) ForgetRun(ctx context.Context, run int64) (_ int64, err error) {
	defer s.explain(&err)
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM people WHERE first_run=?`), run)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil || n > 0 {
		return n, err
	}
	var one int
	switch err := s.db.QueryRowContext(ctx, s.q(`SELECT 1 FROM runs WHERE id=?`), run).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, ErrNoRun
	case err != nil:
		return 0, err
	}
	return 0, nil
}

// Close closes the database.
// Checkpoint copies the write-ahead log's transactions into the database
// file, as far as no reader holds it back (PRAGMA wal_checkpoint(PASSIVE)).
// Closing the last connection does the same, and then deletes the log: a
// log of the whole run's transactions took 11-14 ms to close. Postgres
// needs none.
func (s *SQLite) Checkpoint(ctx context.Context) (err error) {
	defer s.explain(&err)
	if s.pg {
		return nil
	}
	_, err = s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
	return err
}

func (s *SQLite) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.compiling.Wait()
	return s.db.Close()
}
