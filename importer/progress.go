package importer

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/revcent-import/revcent-import/results"
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
	// Earlier is how many rows the results file had finished when the
	// run started (--resume): they are skipped, fast, and speed and ETA
	// leave them out.
	Earlier int64
	// Read says the whole input has been read: Done is then the total.
	Read bool
}

// ThisRun returns the rows finished by this run, and how many it has in
// all (-1 when unknown): the ones speed and ETA are about.
func (s Snapshot) ThisRun() (done, total int64) {
	done, total = s.Done-s.Skipped, -1
	if s.Total >= 0 {
		total = max(s.Total-s.Earlier, done)
	}
	return done, total
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
	var earlier int64
	if r.ix != nil {
		for _, st := range []results.Status{results.Created, results.Existing, results.Duplicate, results.Invalid} {
			earlier += int64(r.ix.Counts[st])
		}
		if !r.cfg.RetryFailed {
			earlier += int64(r.ix.Counts[results.Failed])
		}
	}
	snap := func() Snapshot {
		s := Snapshot{Total: r.total.Load(), Created: r.c.created.Load(), Duplicate: r.c.duplicate.Load(), Invalid: r.c.invalid.Load(),
			Failed: r.c.failed.Load(), Skipped: r.c.skipped.Load(), Existing: r.c.existing.Load(), Reconciling: r.reconciling.Load(),
			Bytes: r.src.BytesRead(), BytesTotal: r.in.Size,
			Limit: r.cfg.Limiter.Limit(), Elapsed: time.Since(start)}
		s.Done = s.Created + s.Existing + s.Duplicate + s.Invalid + s.Failed + s.Skipped + r.c.blank.Load()
		// The count is of records as a quick scan sees them; a broken
		// quote can make the reader see more. Once the input is read, the
		// rows read are the total; until then, at least one more than read.
		s.Earlier = earlier
		read := r.c.rows.Load()
		select {
		case <-r.readerDone:
			s.Read = true
			if s.Total >= 0 {
				s.Total = read
			}
		default:
			if s.Total >= 0 && read >= s.Total {
				s.Total = read + 1
			}
		}
		return s
	}
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.Update(snap())
		case <-r.writerDone:
			if r.readAll {
				// The whole input was read, so its count cannot take much
				// longer: a run quicker than it (a few rows) still ends
				// on its total.
				<-r.counted
			}
			p.Finish(snap())
			return
		}
	}
}

// Bar draws a progressbar/v3 bar on a terminal: this run's rows done of
// its total with rate and ETA, or bytes of the input when the row total is
// unknown. The line is kept within the terminal's width (down to 40
// columns): a longer one wraps, and every redraw then adds a line.
type Bar struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	rows  bool
	max   int64
	width func() int // the terminal's columns; 0 when unknown
}

// NewBar returns a Bar drawing on w, which should be a terminal.
func NewBar(w io.Writer) *Bar {
	b := &Bar{w: w, width: func() int { return 0 }}
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		b.width = func() int {
			if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
				return cols
			}
			return 0
		}
	}
	return b
}

// NewBarWidth is NewBar for a writer whose width is given (tests).
func NewBarWidth(w io.Writer, cols int) *Bar { return &Bar{w: w, width: func() int { return cols }} }

func (b *Bar) init(s Snapshot, cols int) {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetWidth(30), // narrowed to the terminal by progressbar
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.w) }),
	}
	if done, total := s.ThisRun(); total >= 0 {
		_ = done
		b.rows, b.max = true, max(total, 1)
		opts = append(opts, progressbar.OptionShowCount())
		if cols == 0 || cols >= 60 {
			opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"))
		}
		b.bar = progressbar.NewOptions64(b.max, opts...)
		return
	}
	opts = append(opts, progressbar.OptionShowBytes(true))
	b.bar = progressbar.NewOptions64(s.BytesTotal, opts...) // -1: a spinner
}

// describe says the counts in the room there is: cols is the terminal's
// width, room what the bar leaves for the description.
func describe(s Snapshot, room int, rows bool) string {
	full := fmt.Sprintf("created %d  failed %d  invalid %d", s.Created, s.Failed, s.Invalid)
	if s.Existing > 0 {
		full += fmt.Sprintf("  existing %d", s.Existing)
	}
	if s.Reconciling > 0 {
		full += fmt.Sprintf("  reconciling %d rows", s.Reconciling)
	}
	if s.Limit > 0 {
		full += fmt.Sprintf("  rate %.0f/s", s.Limit)
	}
	if !rows {
		full = fmt.Sprintf("%d rows  ", s.Done) + full
	}
	short := fmt.Sprintf("ok %d fail %d inv %d ", s.Created+s.Existing, s.Failed, s.Invalid)
	tiny := fmt.Sprintf("ok %d ", s.Created+s.Existing)
	for _, d := range []string{full + "  ", short, tiny} {
		if room <= 0 || len(d) <= room {
			return d
		}
	}
	return ""
}

// Update implements Progress.
func (b *Bar) Update(s Snapshot) {
	cols := b.width()
	if b.bar == nil {
		b.init(s, cols)
	}
	done, total := s.ThisRun()
	if b.rows && total != b.max && total > done {
		b.max = total
		b.bar.ChangeMax64(total)
	}
	// What the bar itself takes: percent, bar, counts, rate, times.
	room := 0
	if cols > 0 {
		// "54% |" bar (at least 10; progressbar narrows it to fit) "| "
		// "(3273/6000, 1661 rows/s)" " [1m2s:3m4s]".
		digits := len(fmt.Sprint(b.max))
		used := 5 + 10 + 2 + 2*digits + 3 + 14 + 1
		if cols >= 60 {
			used += 13
		}
		room = max(cols-used, 1)
	}
	b.bar.Describe(describe(s, room, b.rows))
	if b.rows {
		b.bar.Set64(done)
	} else {
		b.bar.Set64(s.Bytes)
	}
}

// Finish implements Progress.
func (b *Bar) Finish(s Snapshot) {
	b.Update(s)
	done, total := s.ThisRun()
	if b.rows && s.Read && done == total && total != b.max {
		b.max = total
		b.bar.ChangeMax64(total)
	}
	if b.rows && done < b.max {
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
	// Speed and ETA from this run's rows: rows skipped as done earlier
	// pass in a moment and say nothing of what is left.
	done, total := s.ThisRun()
	prevDone, _ := l.prev.ThisRun()
	rate := float64(done-prevDone) / (s.Elapsed - l.prev.Elapsed).Seconds()
	attrs := []any{"done", s.Done}
	if s.Total >= 0 {
		attrs = append(attrs, "total", s.Total, "percent", math.Round(1000*float64(s.Done)/float64(max(s.Total, 1)))/10)
	} else if s.BytesTotal > 0 {
		attrs = append(attrs, "input_percent", math.Round(1000*float64(s.Bytes)/float64(s.BytesTotal))/10)
	}
	attrs = append(attrs, "created", s.Created, "existing", s.Existing, "duplicate", s.Duplicate, "invalid", s.Invalid, "failed", s.Failed,
		"reconciling", s.Reconciling, "rows_per_s", math.Round(rate), "rate_limit", math.Round(s.Limit*10)/10)
	if total >= 0 && rate > 0 {
		attrs = append(attrs, "eta", (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second).String())
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
