package importer

import (
	"errors"

	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/revcent-import/revcent-import/mapping"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent"
	"github.com/revcent-import/revcent-import/source"
)

// Input says what to read and how to map it; import and validate share it.
type Input struct {
	Path    string         // a path, or "-" for Stdin
	Stdin   io.Reader      //
	Source  source.Options //
	Mapping *mapping.Spec  // nil: auto-map by header
	// Campaign overrides the mapping's campaign when set.
	Campaign string
	// UnmappedAsMetadata and TruncateMetadata: see mapping.Options.
	UnmappedAsMetadata bool
	TruncateMetadata   bool
	// MaxFieldLength: see mapping.Options.
	MaxFieldLength int
	// CampaignOptional lets a run without any campaign go on with a
	// placeholder (validate: the rows can be checked before the campaign
	// is known).
	CampaignOptional bool
}

// placeholderCampaign stands in for a campaign validate was not given.
const placeholderCampaign = "(no campaign given)"

// open opens the input and compiles its mapping. Every error is a
// *ConfigError: nothing has been sent.
func open(in Input, log *slog.Logger, now time.Time) (source.Reader, source.Input, *mapping.Mapper, error) {
	if in.Source.Warn == nil {
		name := in.Path
		if name == "-" {
			name = "stdin"
		}
		in.Source.Warn = func(msg string) { log.Warn(name + ": " + msg) }
	}
	src, info, err := source.Open(in.Path, in.Stdin, in.Source)
	if err != nil {
		return nil, info, nil, &ConfigError{err}
	}
	spec := in.Mapping
	if spec == nil {
		auto, unmapped, notes := mapping.AutoNotes(src.Columns())
		spec = &auto
		for _, n := range notes {
			log.Warn(info.Name + ": " + n)
		}
		if len(unmapped) > 0 && !in.UnmappedAsMetadata {
			log.Info("columns not mapped", "columns", strings.Join(unmapped, ", "))
		}
	}
	opts := mapping.Options{Campaign: in.Campaign, Now: now,
		UnmappedAsMetadata: in.UnmappedAsMetadata, TruncateMetadata: in.TruncateMetadata, MaxFieldLength: in.MaxFieldLength}
	m, err := mapping.Compile(*spec, src.Columns(), src.Index, opts)
	if err != nil && in.CampaignOptional && errors.Is(err, mapping.ErrNoCampaign) {
		opts.Campaign = placeholderCampaign
		if m, err = mapping.Compile(*spec, src.Columns(), src.Index, opts); err == nil {
			log.Warn("no campaign given: checking the rows anyway; import needs --campaign or a campaign in the mapping")
		}
	}
	if err != nil {
		src.Close()
		return nil, info, nil, &ConfigError{fmt.Errorf("%s: %w", info.Name, err)}
	}
	return src, info, m, nil
}

// verdict is what the reader decides for one row before anything is sent.
type verdict struct {
	rec    results.Record // Row, Line, RowHash, Email; Status etc. when not sent
	req    revcent.CreateCustomerRequest
	send   bool
	dupOf  int                  // the first row with the same email, for duplicates
	fields []mapping.FieldError // for invalid rows that mapped with errors
}

// preparer maps, validates and deduplicates rows, in input order. It is
// not safe for concurrent use.
type preparer struct {
	mapper *mapping.Mapper
	// seen maps a hash of each normalised email to the first row that
	// carries it: about 16-24 bytes a row, not the emails. A 64-bit
	// collision (odds about 1 in 10^7 at a million rows) would mark a row
	// a duplicate of a different email.
	seen seenSet
	seed maphash.Seed
}

func newPreparer(m *mapping.Mapper, estimatedRows int) *preparer {
	p := &preparer{mapper: m, seed: maphash.MakeSeed()}
	p.seen.reserve(estimatedRows)
	return p
}

// remember records that row, created earlier, holds email.
func (p *preparer) remember(email []byte, row int) {
	p.seen.put(maphash.Bytes(p.seed, email), row)
}

// prepare decides a row: invalid (never sent),
// duplicate of an earlier row, or a request to send.
func (p *preparer) prepare(row source.Row) verdict {
	v := verdict{rec: results.Record{Row: row.Record, Line: row.Line}}
	if row.Err != nil {
		v.rec.Status, v.rec.ErrorCode, v.rec.Message = results.Invalid, "unreadable_row", fmt.Sprintf("line %d: %v", row.Line, row.Err)
		return v
	}
	req, ferrs := p.mapper.Map(row.Values)
	v.rec.Email = req.Customer.Email
	if len(ferrs) > 0 {
		msgs := make([]string, len(ferrs))
		for i, fe := range ferrs {
			msgs[i] = fe.Error()
		}
		v.rec.Status, v.rec.ErrorCode = results.Invalid, "invalid_field"
		v.rec.Message = fmt.Sprintf("line %d, %s", row.Line, strings.Join(msgs, "; "))
		v.fields = ferrs
		return v
	}
	h := maphash.String(p.seed, v.rec.Email)
	// A row is never a duplicate of itself (its own earlier created line,
	// seen in the journal).
	if first, dup := p.seen.get(h); dup && first != row.Record {
		v.rec.Status, v.rec.ErrorCode, v.dupOf = results.Duplicate, "duplicate_email", first
		v.rec.Message = fmt.Sprintf("same email as row %d", first)
		return v
	}
	p.seen.put(h, row.Record)
	v.req, v.send = req, true
	return v
}
