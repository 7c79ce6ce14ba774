// Package ledger remembers, across runs, who was already created: per
// target (a base URL and a key fingerprint), each person's match key, the
// customer id, the campaign, a hash of the mapped request (card fields
// left out), the first and the last run, and the last status. A run
// claims a key before its request, in a transaction, so that two
// importers sharing a ledger never both create one person.
//
// Store is the interface; SQLite (this package, through the pure-Go
// modernc.org/sqlite) is its first implementation.
package ledger

import (
	"context"
	"errors"
	"time"
)

// Person is what the ledger knows of one match key on one target.
type Person struct {
	Target      string
	Key         string // "email:ada@example.com" or "internal_id:C-1001"
	CustomerID  string
	Campaign    string
	RequestHash string // of the mapped request, card fields left out
	Status      string // created or existing
	FirstRun    int64
	LastRun     int64
	FirstAt     time.Time
	LastAt      time.Time
	// Request is the mapped request sent, as JSON without its card (on
	// Settle), or the one found changed (on NoteChanged). Changed's
	// answers carry both: Request last sent, ChangedRequest found since
	// by run ChangedRun.
	Request        string
	ChangedRequest string
	ChangedRun     int64
	ChangedAt      time.Time
}

// Run is one import, as `ledger runs` lists it.
type Run struct {
	ID        int64
	Target    string
	Input     string
	Results   string
	Started   time.Time
	Ended     time.Time // zero while it runs, or if it was killed
	Host      string    // where it ran (Runs)
	Elsewhere bool      // Host is not this one (Runs)
	PID       int
	Created   int64
	Existing  int64
	Changed   int64
	Invalid   int64
	Failed    int64
	InDoubt   int64
	Exit      int
	// Claims is how many keys the run still claims: their outcomes are
	// not in the ledger yet (in flight while it runs; left by a kill,
	// until its resume, or the next run to meet one, settles them).
	Claims int64
	// Killed is set (by Runs) for a run that has not ended, on this
	// host, whose process is gone. A run on another host that has not
	// ended may be either.
	Killed bool
}

// Claim is the answer to a claim.
type Claim struct {
	// Known is the person, when the target already has it created: no
	// request is to be sent.
	Known *Person
	// Claimed says this run holds the key now: send, then Complete or
	// Release.
	Claimed bool
	// Stale says the claim was taken over from a run that died holding
	// it: its request may have created the customer; reconcile first.
	Stale      bool
	StaleSince time.Time
	// StaleRun is the run that died holding it: a resumed run whose
	// journal shows that run never sent the row needs no reconciling.
	StaleRun int64
	// HeldBy is another live run holding the key: wait, and claim again.
	HeldBy int64
}

// ErrNoRun is ForgetRun's answer for a run the ledger does not have.
var ErrNoRun = errors.New("no such run in the ledger")

// Stat is one line of `ledger stats`.
type Stat struct {
	Target, Campaign string
	People           int64
	LastAt           time.Time
}

// Store is a ledger. Every method is safe for concurrent use.
type Store interface {
	StartRun(ctx context.Context, r Run) (int64, error)
	// LastRun is the latest run on the results file at path, if any.
	LastRun(ctx context.Context, results string) (Run, bool, error)
	EndRun(ctx context.Context, r Run) error
	// ClaimMany claims each key for run, in one transaction: a key the
	// target has is answered Known (and claimed too when known is true,
	// for --existing create), one another live run holds HeldBy.
	ClaimMany(ctx context.Context, target string, keys []string, run int64, known bool) ([]Claim, error)
	// Release drops run's claims of keys on target.
	Release(ctx context.Context, target string, run int64, keys []string) error
	// Settle records, in one transaction, done as created or existing (a
	// customer id already known stays) and drops run's claims on released.
	Settle(ctx context.Context, run int64, done, released []Person) error
	// NoteChanged records the requests run found changed and did not send.
	NoteChanged(ctx context.Context, run int64, people []Person) error
	// Changed lists target's people with a change noted and not sent.
	Changed(ctx context.Context, target string) ([]Person, error)
	Lookup(ctx context.Context, target, key string) (*Person, error)
	Show(ctx context.Context, key string) ([]Person, error)
	Stats(ctx context.Context) ([]Stat, error)
	Runs(ctx context.Context) ([]Run, error)
	Forget(ctx context.Context, key string) (int64, error)
	// ForgetRun removes the people run created first; ErrNoRun when
	// the ledger has no such run.
	ForgetRun(ctx context.Context, run int64) (int64, error)
	// Checkpoint copies what the store's log holds into its file, where
	// it keeps one apart (SQLite's write-ahead log), without waiting for
	// readers or writers: closing the store then has less to do.
	Checkpoint(ctx context.Context) error
	Close() error
}
