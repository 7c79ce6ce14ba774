package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/revcent-import/revcent-import/mapping"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent"
	"github.com/revcent-import/revcent-import/source"
)

// ValidateConfig is a validation run: every row is read, mapped and
// checked exactly as import would, and nothing is sent.
type ValidateConfig struct {
	Input
	// Problems receives one line per problem: FILE:LINE: column, value,
	// reason. nil discards them.
	Problems io.Writer
	// Requests, when set, receives the request each valid row would send,
	// one JSON object per line, card numbers masked and card codes hidden
	// (import --dry-run).
	Requests io.Writer
	Log      *slog.Logger
	Now      func() time.Time
}

// Reason counts the rows that share one problem.
type Reason struct {
	Reason    string // e.g. `column "Email" is not an email address`
	Rows      int64
	FirstLine int // where it first occurs
}

// Report is what a validation found.
type Report struct {
	Input     string
	Rows      int64
	Valid     int64 // would be sent
	Invalid   int64
	Duplicate int64
	Blank     int64    // rows with every cell empty: skipped
	Reasons   []Reason // invalid rows by reason, most frequent first
	Elapsed   time.Duration
}

// Validate reads cfg's input to the end and reports every row that import
// would not send. It returns a *ConfigError when the input or mapping is
// unusable. Cancelling ctx stops it early.
func Validate(ctx context.Context, cfg ValidateConfig) (Report, error) {
	start := time.Now()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Problems == nil {
		cfg.Problems = io.Discard
	}
	src, in, mapper, err := open(cfg.Input, cfg.Log, cfg.Now())
	if errors.Is(err, source.ErrEmpty) {
		return Report{Input: in.Name, Elapsed: time.Since(start)}, nil
	}
	if err != nil {
		return Report{}, err
	}
	defer src.Close()
	rep := Report{Input: in.Name}
	prep := newPreparer(mapper, in.EstimatedRows)
	reasons := map[string]*Reason{}
	count := func(key string, line int) {
		r := reasons[key]
		if r == nil {
			r = &Reason{Reason: key, FirstLine: line}
			reasons[key] = r
		}
		r.Rows++
	}
	var enc *json.Encoder
	if cfg.Requests != nil {
		enc = json.NewEncoder(cfg.Requests)
	}
	for ctx.Err() == nil {
		row, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rep, &ConfigError{fmt.Errorf("%s: %w", in.Name, err)}
		}
		rep.Rows++
		if row.Err == nil && source.Blank(row.Values) {
			rep.Blank++
			continue
		}
		v := prep.prepare(row)
		switch {
		case v.send:
			rep.Valid++
			if enc != nil {
				if err := enc.Encode(dryRun{Row: row.Record, Line: row.Line, Request: masked(v.req)}); err != nil {
					return rep, &AbortError{fmt.Errorf("dry-run output: %w", err)}
				}
			}
		case v.rec.Status == results.Duplicate:
			rep.Duplicate++
			fmt.Fprintf(cfg.Problems, "%s:%d: duplicate: %s (not sent)\n", in.Name, row.Line, v.rec.Message)
		case len(v.fields) > 0:
			rep.Invalid++
			for _, fe := range v.fields {
				fmt.Fprintf(cfg.Problems, "%s:%d: %v\n", in.Name, row.Line, fe)
				count(reasonKey(fe), row.Line)
			}
		default:
			rep.Invalid++
			fmt.Fprintf(cfg.Problems, "%s:%s\n", in.Name, strings.TrimPrefix(v.rec.Message, "line "))
			count(unreadableKey(v.rec.Message), row.Line)
		}
	}
	for _, r := range reasons {
		rep.Reasons = append(rep.Reasons, *r)
	}
	sort.Slice(rep.Reasons, func(i, j int) bool {
		a, b := rep.Reasons[i], rep.Reasons[j]
		return a.Rows > b.Rows || (a.Rows == b.Rows && a.FirstLine < b.FirstLine)
	})
	rep.Elapsed = time.Since(start)
	if ctx.Err() != nil {
		return rep, ErrInterrupted
	}
	return rep, nil
}

// reasonKey names a field problem without its value, so that rows with
// the same problem count together.
func reasonKey(fe mapping.FieldError) string {
	where := fmt.Sprintf("column %q", fe.Column)
	if fe.Column == "" {
		where = fe.Target
	}
	return where + " " + fe.Reason
}

func unreadableKey(msg string) string {
	switch {
	case strings.Contains(msg, "unbalanced quote"):
		return "unbalanced quote (the row's lines were read again as rows)"
	case strings.Contains(msg, "fields, the header has"):
		return "wrong number of fields"
	case strings.Contains(msg, "not a JSON object"):
		return "line is not a JSON object"
	case strings.Contains(msg, "not valid JSON"):
		return "line is not valid JSON"
	}
	return "unreadable row"
}

// dryRun is one line of import --dry-run's output.
type dryRun struct {
	Row     int                           `json:"row"`
	Line    int                           `json:"line"`
	Request revcent.CreateCustomerRequest `json:"request"`
}

// masked returns req with the card number cut to its last four digits and
// the card code hidden.
func masked(req revcent.CreateCustomerRequest) revcent.CreateCustomerRequest {
	if req.Payment == nil || req.Payment.CreditCard == nil {
		return req
	}
	cc := *req.Payment.CreditCard
	cc.CardNumber = mapping.Mask(cc.CardNumber)
	if cc.CardCode != "" {
		cc.CardCode = strings.Repeat("*", len(cc.CardCode))
	}
	req.Payment = &revcent.Payment{CreditCard: &cc}
	return req
}
