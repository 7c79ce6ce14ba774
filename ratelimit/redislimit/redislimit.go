// Package redislimit keeps a limit shared by several importers in Redis
// (--shared-limit redis://HOST:PORT/NAME): the token bucket is
// go-redis/redis_rate's GCRA, on Redis's own clock; the adaptive state
// every importer follows (ratelimit.State) is one JSON value, changed in
// WATCH/MULTI transactions; accepted answers are counted per measurement
// window; and the importers sharing the limit are a sorted set of who was
// seen in the last few seconds. Every key starts "revcent-import:NAME:".
package redislimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/revcent-import/revcent-import/ratelimit"
)

// go-redis logs a failed dial to stderr itself, in its own words: the
// importer says what failed once, in its log (see Describe).
func init() { redis.SetLogger(quiet{}) }

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Store is a ratelimit.Shared in Redis.
type Store struct {
	rdb    *redis.Client
	lim    *redis_rate.Limiter
	prefix string
	member string // this importer in the members set
	addr   string // HOST:PORT, for messages (never the password)
	name   string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// Open connects to the Redis server of a redis://[USER:PASSWORD@]HOST:PORT/NAME
// URL (rediss:// for TLS; ?db=N for a database other than 0) and checks
// that it answers. NAME is the limit's: importers using the same one
// share it.
func Open(ctx context.Context, raw string) (*Store, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, errors.New("--shared-limit: want redis://HOST:PORT/NAME (rediss:// for TLS), such as redis://127.0.0.1:6379/nightly")
	}
	name := u.Path
	if len(name) > 0 && name[0] == '/' {
		name = name[1:]
	}
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("--shared-limit redis://%s/%s: name the limit after the host, in letters, digits, '.', '_' or '-' (redis://%s/nightly): importers using one name share one limit", u.Host, name, u.Host)
	}
	opt := &redis.Options{Addr: u.Host, DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, PoolTimeout: time.Second, MaxRetries: -1, ContextTimeoutEnabled: true}
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	if db := u.Query().Get("db"); db != "" {
		if opt.DB, err = strconv.Atoi(db); err != nil || opt.DB < 0 {
			return nil, fmt.Errorf("--shared-limit redis://%s/%s?db=%s: want a database number, such as db=1", u.Host, name, db)
		}
	}
	if u.Scheme == "rediss" {
		ropt, err := redis.ParseURL("rediss://" + u.Host)
		if err != nil {
			return nil, fmt.Errorf("--shared-limit rediss://%s: %v", u.Host, err)
		}
		opt.TLSConfig = ropt.TLSConfig
	}
	rdb := redis.NewClient(opt)
	s := &Store{rdb: rdb, lim: redis_rate.NewLimiter(rdb), prefix: "revcent-import:" + name + ":", member: memberID(), addr: u.Host, name: name}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("--shared-limit: Redis at %s %s: start it, or run without --shared-limit", u.Host, Describe(err))
	}
	return s, nil
}

// Where names the limit for messages: redis://HOST:PORT/NAME, without any
// password.
func (s *Store) Where() string { return "redis://" + s.addr + "/" + s.name }

// Addr is the Redis server's HOST:PORT.
func (s *Store) Addr() string { return s.addr }

// Close closes the connections.
func (s *Store) Close() error { return s.rdb.Close() }

func memberID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Describe says what went wrong with Redis, in words (the part of a
// message after "Redis at HOST:PORT").
func Describe(err error) string {
	var ne interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "did not answer in time"
	case errors.Is(err, redis.ErrClosed):
		return "was closed"
	default:
		msg := err.Error()
		for _, s := range []struct{ in, say string }{
			{"connection refused", "refused the connection (is it running?)"},
			{"NOAUTH", "wants a password: redis://:PASSWORD@HOST:PORT/NAME"},
			{"WRONGPASS", "refused the user name or password"},
			{"no such host", "is not a host name this machine can resolve"},
			{"EOF", "closed the connection"},
			{"connection reset", "closed the connection"},
			{"broken pipe", "closed the connection"},
		} {
			if strings.Contains(msg, s.in) {
				return s.say
			}
		}
		return "failed (" + msg + ")"
	}
}

// stateTTL is how long the shared state outlives its last change: a limit
// nobody used for a day starts again from the next importer's rate.
const stateTTL = 24 * time.Hour

func (s *Store) key(k string) string { return s.prefix + k }

func (s *Store) acceptedKey(window int64) string {
	return s.key("accepted:" + strconv.FormatInt(window, 10))
}

// Take waits for a token of the shared bucket: GCRA at r a second, in
// steps of 1/100 of a request, with bursts of burst.
func (s *Store) Take(ctx context.Context, r float64, burst int) error {
	if math.IsInf(r, 1) {
		return nil
	}
	limit := redis_rate.Limit{Rate: max(1, int(math.Round(r*100))), Period: 100 * time.Second, Burst: max(burst, 1)}
	for {
		res, err := s.lim.Allow(ctx, s.key("bucket"), limit)
		if err != nil {
			return err
		}
		if res.Allowed > 0 {
			return nil
		}
		t := time.NewTimer(max(res.RetryAfter, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// state is ratelimit.State as stored: JSON has no infinity, so a rate of
// none is -1.
func encode(st ratelimit.State) ([]byte, error) {
	if math.IsInf(st.Rate, 1) {
		st.Rate = -1
	}
	return json.Marshal(st)
}

func decode(b []byte) (ratelimit.State, error) {
	var st ratelimit.State
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("the shared state is not revcent-import's (%v): is another program using these keys?", err)
	}
	if st.Rate < 0 {
		st.Rate = math.Inf(1)
	}
	return st, nil
}

func (s *Store) count(ctx context.Context, p redis.Pipeliner, window, n int64) {
	if n > 0 {
		p.IncrBy(ctx, s.acceptedKey(window), n)
		p.Expire(ctx, s.acceptedKey(window), time.Hour)
	}
}

// Update adds n to window's count, then runs f on the shared state in a
// WATCH/MULTI transaction, again while another importer changed it first.
func (s *Store) Update(ctx context.Context, window, n int64, f func(st *ratelimit.State, accepted int64) bool) (ratelimit.State, error) {
	if n > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { s.count(ctx, p, window, n); return nil }); err != nil {
			return ratelimit.State{}, err
		}
	}
	var out ratelimit.State
	for range 50 {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			var st ratelimit.State
			b, err := tx.Get(ctx, s.key("state")).Bytes()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return err
			default:
				if st, err = decode(b); err != nil {
					return err
				}
			}
			accepted, err := tx.Get(ctx, s.acceptedKey(st.Window)).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			out = st
			if !f(&st, accepted) {
				return nil
			}
			enc, err := encode(st)
			if err != nil {
				return err
			}
			if _, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, s.key("state"), enc, stateTTL)
				return nil
			}); err != nil {
				return err
			}
			out = st
			return nil
		}, s.key("state"))
		if errors.Is(err, redis.TxFailedErr) {
			continue // another importer changed the state first: decide again on its
		}
		return out, err
	}
	return out, errors.New("the shared state kept changing under this importer")
}

// membersFor is how long an importer counts as sharing the limit after
// its last sync.
const membersFor = 5 * time.Second

// Sync adds n to window's count, marks this importer as present, and
// reads the state and the number of importers present, in one round trip.
func (s *Store) Sync(ctx context.Context, window, n int64) (ratelimit.State, int, error) {
	now := time.Now()
	var get *redis.StringCmd
	var card *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.count(ctx, p, window, n)
		p.ZAdd(ctx, s.key("members"), redis.Z{Score: float64(now.UnixMilli()), Member: s.member})
		p.ZRemRangeByScore(ctx, s.key("members"), "-inf", strconv.FormatInt(now.Add(-membersFor).UnixMilli(), 10))
		p.Expire(ctx, s.key("members"), time.Hour)
		card = p.ZCard(ctx, s.key("members"))
		get = p.Get(ctx, s.key("state"))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return ratelimit.State{}, 0, err
	}
	b, err := get.Bytes()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			// The state expired or was deleted: the next Update starts it again.
			return ratelimit.State{}, 0, errors.New("the shared state is gone (deleted, or Redis restarted)")
		}
		return ratelimit.State{}, 0, err
	}
	st, err := decode(b)
	return st, int(card.Val()), err
}

// Leave takes this importer out of the members set.
func (s *Store) Leave(ctx context.Context) error {
	return s.rdb.ZRem(ctx, s.key("members"), s.member).Err()
}
