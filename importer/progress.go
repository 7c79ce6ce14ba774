package importer

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Snapshot is the state of a run at one moment, for progress displays.
type Snapshot struct {
	Total     int64 // rows in the input; -1 when unknown (stdin, gzip)
	Done      int64 // rows with an outcome, including rows skipped by --resume
	Created   int64
	Duplicate int64
	Invalid   int64
	Failed    int64
	Skipped   int64
	Existing  int64
	// Reconciling is how many rows are set aside now: sent, outcome
	// unknown, being searched for before anything is resent.
	Reconciling int64
	Bytes       int64   // input bytes consumed
	BytesTotal  int64   // input size; -1 when unknown
	Limit       float64 // current rate limit, requests/s; 0 for none
	Elapsed     time.Duration
}

// Progress shows a run's progress. Update is called a few times a second
// from one goroutine; Finish once at the end.
type Progress interface {
	Update(Snapshot)
	Finish(Snapshot)
}

// progressEvery is how often the pipeline samples its counters.
const progressEvery = 200 * time.Millisecond

// report feeds p until the writer has finished.
func (r *run) report(p Progress) {
	start := time.Now()
	snap := func() Snapshot {
		s := Snapshot{Total: r.total.Load(), Created: r.c.created.Load(), Duplicate: r.c.duplicate.Load(), Invalid: r.c.invalid.Load(),
			Failed: r.c.failed.Load(), Skipped: r.c.skipped.Load(), Existing: r.c.existing.Load(), Reconciling: r.reconciling.Load(),
			Bytes: r.src.BytesRead(), BytesTotal: r.in.Size,
			Limit: r.cfg.Limiter.Limit(), Elapsed: time.Since(start)}
		s.Done = s.Created + s.Existing + s.Duplicate + s.Invalid + s.Failed + s.Skipped + r.c.blank.Load()
		return s
	}
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.Update(snap())
		case <-r.writerDone:
			p.Finish(snap())
			return
		}
	}
}

// Bar draws a progressbar/v3 bar on a terminal: rows done of the total
// with rate and ETA, or bytes of the input when the row total is unknown.
type Bar struct {
	w    io.Writer
	bar  *progressbar.ProgressBar
	rows bool
}

// NewBar returns a Bar drawing on w, which should be a terminal.
func NewBar(w io.Writer) *Bar { return &Bar{w: w} }

func (b *Bar) init(s Snapshot) {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.w) }),
	}
	if s.Total >= 0 {
		b.rows = true
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"))
		b.bar = progressbar.NewOptions64(max(s.Total, 1), opts...)
		return
	}
	opts = append(opts, progressbar.OptionShowBytes(true))
	b.bar = progressbar.NewOptions64(s.BytesTotal, opts...) // -1: a spinner
}

// Update implements Progress.
func (b *Bar) Update(s Snapshot) {
	if b.bar == nil {
		b.init(s)
	}
	desc := fmt.Sprintf("created %d  failed %d  invalid %d", s.Created, s.Failed, s.Invalid)
	if s.Existing > 0 {
		desc += fmt.Sprintf("  existing %d", s.Existing)
	}
	if s.Reconciling > 0 {
		desc += fmt.Sprintf("  reconciling %d rows", s.Reconciling)
	}
	if s.Limit > 0 {
		desc += fmt.Sprintf("  rate %.0f/s", s.Limit)
	}
	if !b.rows {
		desc = fmt.Sprintf("%d rows  ", s.Done) + desc
	}
	b.bar.Describe(desc)
	if b.rows {
		b.bar.Set64(s.Done)
	} else {
		b.bar.Set64(s.Bytes)
	}
}

// Finish implements Progress.
func (b *Bar) Finish(s Snapshot) {
	b.Update(s)
	if b.rows && s.Done < s.Total {
		// Stopped early: leave the bar where it is.
		fmt.Fprintln(b.w)
		return
	}
	b.bar.Finish()
}

// Lines logs a progress line every interval, for logs and cron; through
// slog, so that --log-format json makes them JSON too.
type Lines struct {
	log   *slog.Logger
	every time.Duration
	last  time.Time
	prev  Snapshot
}

// NewLines returns a Lines logging to log every interval.
func NewLines(log *slog.Logger, every time.Duration) *Lines {
	return &Lines{log: log, every: every, last: time.Now()}
}

// Update implements Progress.
func (l *Lines) Update(s Snapshot) {
	if time.Since(l.last) < l.every {
		return
	}
	rate := float64(s.Done-l.prev.Done) / (s.Elapsed - l.prev.Elapsed).Seconds()
	attrs := []any{"done", s.Done}
	if s.Total >= 0 {
		attrs = append(attrs, "total", s.Total, "percent", math.Round(1000*float64(s.Done)/float64(max(s.Total, 1)))/10)
	} else if s.BytesTotal > 0 {
		attrs = append(attrs, "input_percent", math.Round(1000*float64(s.Bytes)/float64(s.BytesTotal))/10)
	}
	attrs = append(attrs, "created", s.Created, "existing", s.Existing, "duplicate", s.Duplicate, "invalid", s.Invalid, "failed", s.Failed,
		"reconciling", s.Reconciling, "rows_per_s", math.Round(rate), "rate_limit", math.Round(s.Limit*10)/10)
	if s.Total >= 0 && rate > 0 {
		attrs = append(attrs, "eta", (time.Duration(float64(s.Total-s.Done) / rate * float64(time.Second))).Round(time.Second).String())
	}
	msg := "progress"
	if s.Reconciling > 0 {
		msg = fmt.Sprintf("progress: reconciling %d rows", s.Reconciling)
	}
	l.log.Info(msg, attrs...)
	l.last, l.prev = time.Now(), s
}

// Finish implements Progress. The summary follows it; no line here.
func (l *Lines) Finish(Snapshot) {}
