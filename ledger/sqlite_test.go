package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// newLedger opens a new ledger in a directory of the test's, closed when
// the test ends (closing twice is allowed).
func newLedger(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openMade makes a ledger with setup (an older version's, say), then
// opens it with OpenSQLite, closed when the test ends.
func openMade(t *testing.T, setup string, args ...any) *SQLite {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(setup, args...)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// claim is ClaimMany for one key.
func claim(s *SQLite, target, key string, run int64) (Claim, error) {
	cs, err := s.ClaimMany(context.Background(), target, []string{key}, run, false)
	if err != nil {
		return Claim{}, err
	}
	return cs[0], nil
}

func TestClaimCompleteKnown(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "state", "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, _ := s.StartRun(ctx, Run{Target: "T", Input: "a.csv", Results: "a.results.csv"})
	b, _ := s.StartRun(ctx, Run{Target: "T", Input: "b.csv", Results: "b.results.csv"})
	c, err := claim(s, "T", "email:ada@example.com", a)
	if err != nil || !c.Claimed {
		t.Fatalf("first claim: %+v %v", c, err)
	}
	if c, _ := claim(s, "T", "email:ada@example.com", b); c.HeldBy != a || c.Claimed {
		t.Errorf("second run's claim while the first holds it: %+v", c)
	}
	if c, _ := claim(s, "U", "email:ada@example.com", b); !c.Claimed {
		t.Errorf("another target is another person: %+v", c)
	}
	if err := s.Settle(ctx, a, []Person{{Target: "T", Key: "email:ada@example.com", CustomerID: "C1", Status: "created", RequestHash: "h1"}}, nil); err != nil {
		t.Fatal(err)
	}
	c, _ = claim(s, "T", "email:ada@example.com", b)
	if c.Known == nil || c.Known.CustomerID != "C1" || c.Known.FirstRun != a {
		t.Errorf("after complete: %+v", c)
	}
	// Released keys are free again.
	claim(s, "T", "email:bob@example.com", a)
	s.Settle(ctx, a, nil, []Person{{Target: "T", Key: "email:bob@example.com"}})
	if c, _ := claim(s, "T", "email:bob@example.com", b); !c.Claimed || c.Stale {
		t.Errorf("after release: %+v", c)
	}
	// A claim by a run whose process is gone is stale: taken over, to be
	// reconciled.
	dead, _ := s.StartRun(ctx, Run{Target: "T", PID: 1 << 22})
	claim(s, "T", "email:cy@example.com", dead)
	if c, _ := claim(s, "T", "email:cy@example.com", a); !c.Claimed || !c.Stale || c.StaleRun != dead {
		t.Errorf("claim of a dead run (%d): %+v", dead, c)
	}
	if n, _ := s.Forget(ctx, "email:ada@example.com"); n != 1 { // created on T, only claimed on U
		t.Errorf("forget: %d", n)
	}
	if c, _ := claim(s, "U", "email:ada@example.com", a); !c.Claimed {
		t.Errorf("a forgotten key's claims are gone too: %+v", c)
	}
}

// TestClaimsRace: many goroutines, each with its own run, claim the same
// keys; each key is claimed once.
func TestClaimsRace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		run, _ := s.StartRun(ctx, Run{Target: "T"})
		wg.Go(func() {
			for k := 0; k < 50; k++ {
				c, err := claim(s, "T", "email:p"+string(rune('a'+k%26))+string(rune('a'+k/26)), run)
				if err != nil {
					t.Error(err)
					return
				}
				if c.Claimed {
					wins.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if wins.Load() != 50 {
		t.Errorf("%d claims won for 50 keys", wins.Load())
	}
}

// TestOpenConvertsVersion1: a ledger of stop 4's schema (targets in every
// row, a secondary index on key) is converted in place, its people and
// claims kept.
func TestOpenConvertsVersion1(t *testing.T) {
	ctx := context.Background()
	host, _ := os.Hostname()
	s := openMade(t, `CREATE TABLE people (target TEXT NOT NULL, key TEXT NOT NULL, customer_id TEXT NOT NULL DEFAULT '',
  campaign TEXT NOT NULL DEFAULT '', request_hash TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',
  first_run INTEGER NOT NULL DEFAULT 0, last_run INTEGER NOT NULL DEFAULT 0, first_at INTEGER NOT NULL DEFAULT 0,
  last_at INTEGER NOT NULL DEFAULT 0, claimed_by INTEGER NOT NULL DEFAULT 0, claimed_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (target, key)) WITHOUT ROWID;
CREATE INDEX people_key ON people (key);
CREATE TABLE runs (id INTEGER PRIMARY KEY, target TEXT NOT NULL, input TEXT NOT NULL, results TEXT NOT NULL, host TEXT NOT NULL,
  pid INTEGER NOT NULL, started INTEGER NOT NULL, ended INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL DEFAULT 0,
  existing INTEGER NOT NULL DEFAULT 0, changed INTEGER NOT NULL DEFAULT 0, invalid INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0, in_doubt INTEGER NOT NULL DEFAULT 0, exit INTEGER NOT NULL DEFAULT -1);
INSERT INTO runs (id, target, input, results, host, pid, started) VALUES (7, 'T', 'a.csv', 'a.results.csv', '`+host+`', 4194304, 1);
INSERT INTO people VALUES ('T', 'email:ada@example.com', 'C1', 'Spring Promo', 'h1', 'created', 7, 7, 1000, 1000, 0, 0);
INSERT INTO people VALUES ('T', 'email:bob@example.com', '', '', '', '', 0, 0, 0, 0, 7, 2000);`)
	if p, err := s.Lookup(ctx, "T", "email:ada@example.com"); err != nil || p == nil || p.CustomerID != "C1" || p.FirstRun != 7 {
		t.Errorf("the converted person: %+v %v", p, err)
	}
	run, _ := s.StartRun(ctx, Run{Target: "T"})
	if c, err := claim(s, "T", "email:bob@example.com", run); err != nil || !c.Claimed || !c.Stale {
		t.Errorf("the converted claim of a dead run is stale: %+v %v", c, err)
	}
	if st, _ := s.Stats(ctx); len(st) != 1 || st[0].People != 1 {
		t.Errorf("stats after the conversion: %+v", st)
	}
}

// TestOpenUpgradesVersion2: a ledger of stop 5's schema (no requests
// table) is upgraded in place: its people kept, the table added, the
// version the latest.
func TestOpenUpgradesVersion2(t *testing.T) {
	ctx := context.Background()
	s := openMade(t, `CREATE TABLE targets (id INTEGER PRIMARY KEY, target TEXT NOT NULL UNIQUE);
CREATE TABLE people (key TEXT NOT NULL, target_id INTEGER NOT NULL, customer_id TEXT NOT NULL DEFAULT '',
  campaign TEXT NOT NULL DEFAULT '', request_hash TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',
  first_run INTEGER NOT NULL DEFAULT 0, last_run INTEGER NOT NULL DEFAULT 0, first_at INTEGER NOT NULL DEFAULT 0,
  last_at INTEGER NOT NULL DEFAULT 0, claimed_by INTEGER NOT NULL DEFAULT 0, claimed_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key, target_id)) WITHOUT ROWID;
CREATE TABLE runs (id INTEGER PRIMARY KEY, target TEXT NOT NULL, input TEXT NOT NULL, results TEXT NOT NULL, host TEXT NOT NULL,
  pid INTEGER NOT NULL, started INTEGER NOT NULL, ended INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL DEFAULT 0,
  existing INTEGER NOT NULL DEFAULT 0, changed INTEGER NOT NULL DEFAULT 0, invalid INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0, in_doubt INTEGER NOT NULL DEFAULT 0, exit INTEGER NOT NULL DEFAULT -1);
INSERT INTO targets VALUES (1, 'T');
INSERT INTO people VALUES ('email:ada@example.com', 1, 'C1', 'Spring Promo', 'h1', 'created', 7, 7, 1000, 1000, 0, 0);
PRAGMA user_version = 2;`)
	if p, err := s.Lookup(ctx, "T", "email:ada@example.com"); err != nil || p == nil || p.CustomerID != "C1" {
		t.Errorf("the person of version 2: %+v %v", p, err)
	}
	var v int
	s.db.QueryRow(`PRAGMA user_version`).Scan(&v)
	if v != schemaVersion {
		t.Errorf("user_version %d, want %d", v, schemaVersion)
	}
	if err := s.NoteChanged(ctx, 8, []Person{{Target: "T", Key: "email:ada@example.com", Request: `{"a":2}`}}); err != nil {
		t.Fatal(err)
	}
	if ch, err := s.Changed(ctx, "T"); err != nil || len(ch) != 1 || ch[0].Request != "" || ch[0].ChangedRequest != `{"a":2}` {
		t.Errorf("a change noted on a person of version 2 (no request recorded): %+v %v", ch, err)
	}
}

// TestRequestsSentAndChanged: Settle records the request sent, NoteChanged
// the one found since; a later send settles the change, and forgetting a
// person forgets its requests.
func TestRequestsSentAndChanged(t *testing.T) {
	ctx := context.Background()
	s := newLedger(t)
	a, _ := s.StartRun(ctx, Run{Target: "T"})
	ada := Person{Target: "T", Key: "email:ada@example.com", CustomerID: "C1", Status: "created", RequestHash: "h1", Request: `{"phone":"1"}`}
	bob := Person{Target: "T", Key: "email:bob@example.com", CustomerID: "C2", Status: "created", RequestHash: "h2", Request: `{"phone":"2"}`}
	if err := s.Settle(ctx, a, []Person{ada, bob}, nil); err != nil {
		t.Fatal(err)
	}
	if ch, _ := s.Changed(ctx, "T"); len(ch) != 0 {
		t.Errorf("nothing changed yet: %+v", ch)
	}
	b, _ := s.StartRun(ctx, Run{Target: "T"})
	err := s.NoteChanged(ctx, b, []Person{{Target: "T", Key: ada.Key, Request: `{"phone":"9"}`}, {Target: "T", Key: ada.Key, Request: `{"phone":"10"}`}})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Changed(ctx, "T")
	if err != nil || len(ch) != 1 || ch[0].Request != `{"phone":"1"}` || ch[0].ChangedRequest != `{"phone":"10"}` || ch[0].ChangedRun != b || ch[0].CustomerID != "C1" {
		t.Fatalf("changed: %+v %v", ch, err)
	}
	if ch, _ := s.Changed(ctx, "U"); len(ch) != 0 {
		t.Errorf("another target has no changes: %+v", ch)
	}
	// --existing create sends it: the change is settled.
	ada.Request = `{"phone":"10"}`
	if err := s.Settle(ctx, b, []Person{ada}, nil); err != nil {
		t.Fatal(err)
	}
	if ch, _ := s.Changed(ctx, "T"); len(ch) != 0 {
		t.Errorf("a sent change is no longer pending: %+v", ch)
	}
	s.NoteChanged(ctx, b, []Person{{Target: "T", Key: bob.Key, Request: `{"phone":"3"}`}})
	if n, _ := s.Forget(ctx, bob.Key); n != 1 {
		t.Errorf("forget: %d", n)
	}
	var left int
	s.db.QueryRow(`SELECT count(*) FROM requests WHERE key=?`, bob.Key).Scan(&left)
	if left != 0 {
		t.Errorf("%d requests left of a forgotten person", left)
	}
}

// schemaV3 is version 3's schema (stop 7): requests keyed by person.
const schemaV3 = `
CREATE TABLE targets (id INTEGER PRIMARY KEY, target TEXT NOT NULL UNIQUE);
CREATE TABLE people (key TEXT NOT NULL, target_id INTEGER NOT NULL, customer_id TEXT NOT NULL DEFAULT '',
  campaign TEXT NOT NULL DEFAULT '', request_hash TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',
  first_run INTEGER NOT NULL DEFAULT 0, last_run INTEGER NOT NULL DEFAULT 0, first_at INTEGER NOT NULL DEFAULT 0,
  last_at INTEGER NOT NULL DEFAULT 0, claimed_by INTEGER NOT NULL DEFAULT 0, claimed_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key, target_id)) WITHOUT ROWID;
CREATE TABLE requests (key TEXT NOT NULL, target_id INTEGER NOT NULL, request TEXT NOT NULL DEFAULT '',
  changed_request TEXT NOT NULL DEFAULT '', changed_run INTEGER NOT NULL DEFAULT 0, changed_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key, target_id)) WITHOUT ROWID;
CREATE TABLE runs (id INTEGER PRIMARY KEY, target TEXT NOT NULL, input TEXT NOT NULL, results TEXT NOT NULL, host TEXT NOT NULL,
  pid INTEGER NOT NULL, started INTEGER NOT NULL, ended INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL DEFAULT 0,
  existing INTEGER NOT NULL DEFAULT 0, changed INTEGER NOT NULL DEFAULT 0, invalid INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0, in_doubt INTEGER NOT NULL DEFAULT 0, exit INTEGER NOT NULL DEFAULT -1);
INSERT INTO targets VALUES (1, 'T');
INSERT INTO people VALUES ('email:ada@example.com', 1, 'C1', 'Spring Promo', 'h1', 'created', 7, 7, 1000, 1000, 0, 0);
INSERT INTO people VALUES ('email:bob@example.com', 1, 'C2', 'Spring Promo', 'h2', 'created', 7, 7, 1000, 1000, 0, 0);
INSERT INTO requests VALUES ('email:ada@example.com', 1, '{"phone":"1"}', '{"phone":"9"}', 8, 2000);
INSERT INTO requests VALUES ('email:bob@example.com', 1, '{"phone":"2"}', '', 0, 0);
`

// checkUpgradedV3 checks a ledger made with schemaV3 after it was opened:
// the requests kept and linked, a change noted still reported, a new send
// replacing a request (the old one dropped), and forgetting a person
// dropping its request.
func checkUpgradedV3(t *testing.T, s *SQLite) {
	t.Helper()
	ctx := context.Background()
	ch, err := s.Changed(ctx, "T")
	if err != nil || len(ch) != 1 || ch[0].Key != "email:ada@example.com" || ch[0].Request != `{"phone":"1"}` || ch[0].ChangedRequest != `{"phone":"9"}` || ch[0].ChangedRun != 8 {
		t.Fatalf("the change noted in version 3: %+v %v", ch, err)
	}
	count := func() (n int) {
		s.db.QueryRow(`SELECT count(*) FROM requests`).Scan(&n)
		return n
	}
	if n := count(); n != 2 {
		t.Errorf("%d requests after the upgrade, want 2", n)
	}
	run, _ := s.StartRun(ctx, Run{Target: "T"})
	if err := s.Settle(ctx, run, []Person{{Target: "T", Key: "email:bob@example.com", CustomerID: "C2", Status: "created", Request: `{"phone":"3"}`}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.NoteChanged(ctx, run, []Person{{Target: "T", Key: "email:bob@example.com", Request: `{"phone":"4"}`}}); err != nil {
		t.Fatal(err)
	}
	if ch, _ := s.Changed(ctx, "T"); len(ch) != 2 || ch[1].Request != `{"phone":"3"}` || ch[1].ChangedRequest != `{"phone":"4"}` {
		t.Errorf("bob's request after a new send and a change: %+v", ch)
	}
	if n := count(); n != 2 {
		t.Errorf("%d requests after bob's was replaced, want 2 (the old one dropped)", n)
	}
	if n, err := s.Forget(ctx, "email:ada@example.com"); err != nil || n != 1 {
		t.Fatalf("forget: %d %v", n, err)
	}
	if n := count(); n != 1 {
		t.Errorf("%d requests after ada was forgotten, want 1", n)
	}
}

// TestOpenUpgradesVersion3: a ledger of stop 7's schema (requests keyed
// by person) is upgraded in place: requests numbered and linked from
// their people, nothing lost.
func TestOpenUpgradesVersion3(t *testing.T) {
	s := openMade(t, schemaV3+`PRAGMA user_version = 3;`)
	var v int
	s.db.QueryRow(`PRAGMA user_version`).Scan(&v)
	if v != schemaVersion {
		t.Errorf("user_version %d, want %d", v, schemaVersion)
	}
	checkUpgradedV3(t, s)
}

// TestStatementsAreCompiledAsNeeded: a many-row statement not compiled
// yet is compiled inside the transaction that needs it, and for good at
// the next begin; either way the claims and outcomes are right. (After
// opening, a goroutine compiles them all; compiling all before the first
// claim took 8-9 ms.)
func TestStatementsAreCompiledAsNeeded(t *testing.T) {
	ctx := context.Background()
	s := newLedger(t)
	// As if the compiling goroutine had not come to them yet.
	s.stopOnce.Do(func() { close(s.stop) })
	s.compiling.Wait()
	s.mu.Lock()
	for _, st := range s.multi {
		st.Close()
	}
	clear(s.multi)
	s.mu.Unlock()
	compiled := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.multi)
	}
	run, _ := s.StartRun(ctx, Run{Target: "T", Input: "a.csv", Results: "a.results.csv"})
	keys := []string{"email:a@example.com", "email:b@example.com", "email:c@example.com"} // statements of 2 and 1 rows
	for round := range 2 {
		cs, err := s.ClaimMany(ctx, "T", keys, run, false)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cs {
			// The second round reads the claims the first made: this run's.
			if !c.Claimed || c.Known != nil || c.HeldBy != 0 {
				t.Errorf("round %d, %s: %+v, want claimed", round, keys[i], c)
			}
		}
		if got, want := compiled(), 2*round; got != want {
			t.Errorf("after round %d, %d statements compiled for good, want %d (the first round's, at the second's begin)", round, got, want)
		}
	}
	var done []Person
	for _, k := range keys {
		done = append(done, Person{Target: "T", Key: k, CustomerID: "C-" + k, Status: "created", Request: `{"k":"` + k + `"}`})
	}
	if err := s.Settle(ctx, run, done, nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		p, err := s.Lookup(ctx, "T", k)
		if err != nil || p == nil || p.CustomerID != "C-"+k || p.Status != "created" {
			t.Errorf("%s: %+v, %v", k, p, err)
		}
	}
}

// TestAllStatementsAreCompiledAfterOpening: the goroutine the opening
// starts compiles all 27 many-row statements (3 kinds, 9 sizes), early in
// a run, when SQLite's heap is small; and Close stops it.
func TestAllStatementsAreCompiledAfterOpening(t *testing.T) {
	s := newLedger(t)
	s.compiling.Wait()
	s.mu.Lock()
	n := len(s.multi)
	s.mu.Unlock()
	if n != 27 {
		t.Errorf("%d many-row statements compiled, want 27", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing one that is still compiling stops it.
	if err := newLedger(t).Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointEmptiesTheLog: after Checkpoint every frame of the
// write-ahead log is in the database file, so that closing has none left
// to copy.
func TestCheckpointEmptiesTheLog(t *testing.T) {
	ctx := context.Background()
	s := newLedger(t)
	run, _ := s.StartRun(ctx, Run{Target: "T", Input: "a.csv", Results: "a.results.csv"})
	var done []Person
	for i := range 300 {
		done = append(done, Person{Target: "T", Key: fmt.Sprintf("email:%d@example.com", i), CustomerID: "C", Status: "created"})
	}
	if err := s.Settle(ctx, run, done, nil); err != nil {
		t.Fatal(err)
	}
	// PRAGMA wal_checkpoint answers busy, frames in the log, frames
	// checkpointed; NOOP changes nothing, so it reads the state.
	state := func() (logged, copied int) {
		var busy int
		if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(NOOP)`).Scan(&busy, &logged, &copied); err != nil {
			t.Fatal(err)
		}
		return logged, copied
	}
	if logged, copied := state(); logged == 0 || copied == logged {
		t.Fatalf("before: %d frames in the log, %d copied; want some not copied", logged, copied)
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if logged, copied := state(); logged == 0 || copied != logged {
		t.Errorf("after: %d frames in the log, %d copied; want all", logged, copied)
	}
}

// schemaV4 is version 4's schema (stops 8-14): version 5's without the
// claims table; claims were in people's rows.
var schemaV4 = func() string {
	a := strings.Index(Schema, "CREATE TABLE IF NOT EXISTS claims")
	b := strings.Index(Schema, "CREATE TABLE IF NOT EXISTS requests")
	return Schema[:a] + Schema[b:]
}()

// TestOpenUpgradesVersion4: a version 4 ledger's people are appended to
// version 5's, with their requests; a claim left by a run that died
// becomes a claims row, taken over as stale; a dead claim on a person
// created is dropped.
func TestOpenUpgradesVersion4(t *testing.T) {
	ctx := context.Background()
	host, _ := os.Hostname() // run 2 ran here, and its process is gone
	s := openMade(t, schemaV4+`PRAGMA user_version = 4;
INSERT INTO targets (id, target) VALUES (1, 'T');
INSERT INTO runs (id, target, input, results, host, pid, started, ended, exit) VALUES
  (1, 'T', 'a.csv', 'a.results.csv', ?1, 1, 1000, 2000, 0),
  (2, 'T', 'b.csv', 'b.results.csv', ?1, 4194304, 3000, 0, -1);`+"\n"+`
INSERT INTO requests (id, key, target_id, request) VALUES (1, 'email:ada@example.com', 1, '{"phone":"1"}');
INSERT INTO people (key, target_id, customer_id, campaign, request_hash, status, first_run, last_run, first_at, last_at, claimed_by, claimed_at, request_id) VALUES
  ('email:ada@example.com', 1, 'C1', 'Spring', 'h1', 'created', 1, 1, 1000, 1000, 0, 0, 1),
  ('email:bob@example.com', 1, '', '', '', '', 0, 0, 0, 0, 2, 3500, 0),
  ('email:cy@example.com', 1, 'C3', 'Spring', 'h3', 'created', 1, 1, 1000, 1000, 2, 3600, 0);`, host)
	var v, claims int
	s.db.QueryRow(`PRAGMA user_version`).Scan(&v)
	if v != schemaVersion {
		t.Errorf("user_version %d, want %d", v, schemaVersion)
	}
	if s.db.QueryRow(`SELECT count(*) FROM claims`).Scan(&claims); claims != 1 {
		t.Errorf("%d claims rows, want 1 (run 2's, on bob)", claims)
	}
	run, _ := s.StartRun(ctx, Run{Target: "T", Input: "c.csv", Results: "c.results.csv"})
	cs, err := s.ClaimMany(ctx, "T", []string{"email:ada@example.com", "email:bob@example.com", "email:cy@example.com"}, run, false)
	if err != nil {
		t.Fatal(err)
	}
	if k := cs[0].Known; k == nil || k.CustomerID != "C1" || k.FirstRun != 1 || k.RequestHash != "h1" || cs[0].Claimed {
		t.Errorf("ada: %+v", cs[0])
	}
	if !cs[1].Claimed || !cs[1].Stale || cs[1].StaleRun != 2 || cs[1].StaleSince.UnixMilli() != 3500 {
		t.Errorf("bob, claimed by a run that died: %+v", cs[1])
	}
	if k := cs[2].Known; k == nil || k.CustomerID != "C3" || cs[2].Claimed {
		t.Errorf("cy: %+v", cs[2])
	}
	if s.db.QueryRow(`SELECT count(*) FROM claims WHERE run = 2`).Scan(&claims); claims != 0 {
		t.Errorf("run 2's claim is still there after it was taken over")
	}
	if err := s.NoteChanged(ctx, run, []Person{{Target: "T", Key: "email:ada@example.com", Request: `{"phone":"2"}`}}); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Changed(ctx, "T")
	if err != nil || len(ch) != 1 || ch[0].Request != `{"phone":"1"}` || ch[0].ChangedRequest != `{"phone":"2"}` {
		t.Errorf("changed: %+v %v", ch, err)
	}
	if ps, _ := s.Show(ctx, "email:cy@example.com"); len(ps) != 1 || ps[0].CustomerID != "C3" {
		t.Errorf("show cy: %+v", ps)
	}
	// Claims an older version writes into people's rows, after the
	// conversion: a live run's holds the key, a dead run's is taken over.
	live, _ := s.StartRun(ctx, Run{Target: "T", Input: "d.csv", Results: "d.results.csv"})
	if _, err := s.db.Exec(`INSERT INTO people (key, target_id, claimed_by, claimed_at) VALUES ('email:dan@example.com', 1, ?, 4000), ('email:eve@example.com', 1, 2, 4100)`, live); err != nil {
		t.Fatal(err)
	}
	cs, err = s.ClaimMany(ctx, "T", []string{"email:dan@example.com", "email:eve@example.com"}, run, false)
	if err != nil {
		t.Fatal(err)
	}
	if cs[0].HeldBy != live || cs[0].Claimed {
		t.Errorf("dan, in a live run's row claim: %+v", cs[0])
	}
	if !cs[1].Claimed || !cs[1].Stale || cs[1].StaleRun != 2 || cs[1].StaleSince.UnixMilli() != 4100 {
		t.Errorf("eve, in a dead run's row claim: %+v", cs[1])
	}
	if cs, _ := s.ClaimMany(ctx, "T", []string{"email:eve@example.com"}, live, false); cs[0].HeldBy != run {
		t.Errorf("eve, taken over, is held by the run that took it: %+v", cs[0])
	}
}

// TestClaimsRows: SQLite's claims are rows of hashes. A key a run claims
// twice (a row retried) is held once; the run's outcomes empty its claims
// rows, which then go; an outcome a run records without its claim (a
// resumed run's journal, ledger import) drops a dead run's claim of that
// key, not a live run's.
func TestClaimsRows(t *testing.T) {
	ctx := context.Background()
	s := newLedger(t)
	count := func(where string, args ...any) int {
		t.Helper()
		var n int
		if err := s.db.QueryRow(`SELECT count(*) FROM claims `+where, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	a, _ := s.StartRun(ctx, Run{Target: "T", Input: "a.csv", Results: "a.results.csv"})
	for range 2 {
		if c, err := claim(s, "T", "email:ada@example.com", a); err != nil || !c.Claimed {
			t.Fatalf("claim: %+v %v", c, err)
		}
	}
	if n := count(``); n != 1 {
		t.Errorf("a key claimed twice by one run: %d claims rows, want 1", n)
	}
	if err := s.Settle(ctx, a, []Person{{Target: "T", Key: "email:ada@example.com", CustomerID: "C1", Status: "created"}}, nil); err != nil {
		t.Fatal(err)
	}
	if n := count(``); n != 0 {
		t.Errorf("after the outcome: %d claims rows, want 0", n)
	}

	dead, _ := s.StartRun(ctx, Run{Target: "T", PID: 1 << 22})
	live, _ := s.StartRun(ctx, Run{Target: "T", Input: "l.csv", Results: "l.results.csv"})
	claim(s, "T", "email:bob@example.com", dead)
	claim(s, "T", "email:cy@example.com", live)
	resumed, _ := s.StartRun(ctx, Run{Target: "T", Input: "r.csv", Results: "r.results.csv"})
	if err := s.Settle(ctx, resumed, []Person{
		{Target: "T", Key: "email:bob@example.com", CustomerID: "C2", Status: "created"},
		{Target: "T", Key: "email:cy@example.com", CustomerID: "C3", Status: "created"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if n := count(`WHERE run=?`, dead); n != 0 {
		t.Errorf("a dead run's claim of a key recorded since: %d rows left, want 0", n)
	}
	if n := count(`WHERE run=?`, live); n != 1 {
		t.Errorf("a live run's claim of a key another run recorded: %d rows, want 1 (it is its to drop)", n)
	}
}

// TestRunsCountClaims: `ledger runs` shows how many keys each run still
// claims, in claims rows and in people's rows (an older version's).
func TestRunsCountClaims(t *testing.T) {
	ctx := context.Background()
	s := newLedger(t)
	a, _ := s.StartRun(ctx, Run{Target: "T", Input: "a.csv", Results: "a.results.csv"})
	b, _ := s.StartRun(ctx, Run{Target: "T", Input: "b.csv", Results: "b.results.csv"})
	if _, err := s.ClaimMany(ctx, "T", []string{"email:ada@example.com", "email:bob@example.com", "email:cy@example.com"}, a, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, a, []Person{{Target: "T", Key: "email:bob@example.com", CustomerID: "C1", Status: "created"}}, nil); err != nil {
		t.Fatal(err)
	}
	// An older version's claim, in a person's row.
	if _, err := s.db.Exec(`INSERT INTO people (key, target_id, claimed_by, claimed_at) SELECT 'email:dee@example.com', id, ?, 1 FROM targets`, b); err != nil {
		t.Fatal(err)
	}
	dead, _ := s.StartRun(ctx, Run{Target: "T", PID: 1 << 22})
	claim(s, "T", "email:eve@example.com", dead)
	ended, _ := s.StartRun(ctx, Run{Target: "T", PID: 1 << 22})
	s.EndRun(ctx, Run{ID: ended, Exit: 0})
	remote, _ := s.StartRun(ctx, Run{Target: "T", PID: 1 << 22})
	if _, err := s.db.Exec(`UPDATE runs SET host = 'elsewhere' WHERE id = ?`, remote); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctx)
	if err != nil || len(runs) != 5 {
		t.Fatalf("runs: %+v %v", runs, err)
	}
	if r := runs[4]; r.Killed || !r.Elsewhere || r.Host != "elsewhere" || runs[0].Elsewhere {
		t.Errorf("a run of another host whose pid is not running here: killed %v, elsewhere %v, host %q; this host's: elsewhere %v", r.Killed, r.Elsewhere, r.Host, runs[0].Elsewhere)
	}
	if runs[0].Claims != 2 || runs[1].Claims != 1 || runs[2].Claims != 1 || runs[3].Claims != 0 {
		t.Errorf("claims by run: %d, %d, %d, %d, want 2 (3 claimed, 1 settled), 1 (in a row), 1, 0", runs[0].Claims, runs[1].Claims, runs[2].Claims, runs[3].Claims)
	}
	if runs[0].Killed || !runs[2].Killed || runs[3].Killed {
		t.Errorf("killed: %v, %v, %v, want a run of this process alive, one whose process is gone killed, and an ended one not", runs[0].Killed, runs[2].Killed, runs[3].Killed)
	}
}

// TestForgetRun: forgetting a run removes the people it created first;
// a run that created nobody left removes none, and one the ledger never
// had is ErrNoRun.
func TestForgetRun(t *testing.T) {
	ctx := context.Background()
	s := newLedger(t)
	a, _ := s.StartRun(ctx, Run{Target: "T", Input: "a.csv", Results: "a.results.csv"})
	b, _ := s.StartRun(ctx, Run{Target: "T", Input: "b.csv", Results: "b.results.csv"})
	if err := s.Settle(ctx, a, []Person{{Target: "T", Key: "email:ada@example.com", CustomerID: "C1", Status: "created"}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run  int64
		n    int64
		want error
	}{{a, 1, nil}, {a, 0, nil}, {b, 0, nil}, {b + 1, 0, ErrNoRun}} {
		if n, err := s.ForgetRun(ctx, tc.run); n != tc.n || !errors.Is(err, tc.want) {
			t.Errorf("forget run %d: %d %v, want %d and %v", tc.run, n, err, tc.n, tc.want)
		}
	}
}
