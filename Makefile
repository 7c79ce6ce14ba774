# revcent-import: make build | test | bench | demo | lint
GO       ?= go
BIN      := bin/revcent-import
PKGS     := ./...

.PHONY: build test race fuzz demo lint sample clean accept-429 accept-modes accept-ledger accept-shared bench

# The Go build stamps the commit itself from git; the ldflags serve a
# build without that stamp (a source tarball, -buildvcs=false).
COMMIT   := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
DATE     := $(shell git log -1 --format=%cI 2>/dev/null)
LDFLAGS  := -X main.commit=$(COMMIT) -X main.date=$(DATE)

# A static binary (no cgo: the SQLite ledger is pure Go already): it runs
# on any Linux of the same architecture, and without the C library mapped
# an import's peak RSS is 1.5-2 MiB lower.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/revcent-import

# What CI runs: vet, gofmt, the race detector over every package, and a
# short fuzz pass over each reader and the mapping. The passes are counted
# (-fuzztime Nx), not timed: a timed pass can fail with a bare "context
# deadline exceeded" at its end (golang/go#75804, in Go 1.26; it failed
# CI here on FuzzJSONL with no input found). Each count is about 10 s here.
# -parallel 12: the sandbox-mode tests mostly wait (settle windows, search
# lag), so a dozen run at once on two cores.
test: lint
	$(GO) test -race -count=1 -parallel 12 $(PKGS)
	$(GO) test -run '^$$' -fuzz '^FuzzCSV$$' -fuzztime 80000x ./source
	$(GO) test -run '^$$' -fuzz '^FuzzJSONL$$' -fuzztime 80000x ./source
	$(GO) test -run '^$$' -fuzz '^FuzzXLSX$$' -fuzztime 4000x ./source
	$(GO) test -run '^$$' -fuzz '^FuzzMap$$' -fuzztime 5000x ./mapping
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 25000x ./mapping

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Imports sample_data/prospects.csv into the in-process sandbox: no key,
# nothing leaves the machine. The results file goes to a fresh temp dir.
demo: build
	@dir=$$(mktemp -d); \
	  echo "$(BIN) import sample_data/prospects.csv --sandbox --campaign 'Spring Promo' --rate 100 --results $$dir/prospects.results.csv"; \
	  $(BIN) import sample_data/prospects.csv --sandbox --campaign 'Spring Promo' --rate 100 --results $$dir/prospects.results.csv; \
	  code=$$?; echo "exit code $$code (1: some rows are invalid, as sample_data means them to be)"; \
	  echo "results: $$dir/prospects.results.csv"; \
	  [ $$code -le 1 ]

# Issue 4's rate case in full, in real time (about 80 s): 3,000 rows into a
# sandbox allowing 40 requests/s while the importer asks for 200/s.
accept-429:
	REVCENT_RATE_ROWS=3000 $(GO) test -count=1 -run '^TestServerRateLimit$$' -v -timeout 10m ./cmd/revcent-import

# Issue 10's case in full: 3,000 rows in every sandbox mode (get flat and
# nested, search lag 0 and 5 s, each repeated-email behaviour), with lost
# answers and 503s, then with five kills and resumes (about 2 minutes).
accept-modes:
	REVCENT_MODES_ROWS=3000 $(GO) test -count=1 -parallel 12 -run '^TestModes' -v -timeout 20m ./cmd/revcent-import

# Issue 13's case in full: two nights of 10,000 rows through the ledger,
# two importers at once, five kills and resumes (about a minute).
# Issue 14's shared limit in full: three importers of 1,000 rows each,
# one Redis limit, a server allowing 40/s in all; then Redis stopped
# mid-run (about 3 minutes).
accept-shared:
	REVCENT_SHARED_ROWS=1000 $(GO) test -count=1 -run '^TestSharedLimit$$' -v -timeout 20m ./cmd/revcent-import

accept-ledger:
	REVCENT_LEDGER_ROWS=10000 $(GO) test -count=1 -run '^TestLedger' -v -timeout 20m ./cmd/revcent-import

# Go micro-benchmarks, then the driver: importer against a minimal poster,
# rate fidelity, latency hiding, CPU per row, peak RSS, resume start-up.
# It prints markdown for BENCHMARKS.md (about 3 minutes).
bench: build
	$(GO) install github.com/tsenart/vegeta/v12@v12.13.0
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2000x ./mapping
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 5x ./importer
	$(GO) test -run '^$$' -bench LedgerDesigns -benchtime 102400x ./ledger
	$(GO) run ./internal/benchdriver -bin $(BIN)

sample:
	$(GO) run ./internal/fake/samplegen -dir sample_data

clean:
	rm -rf bin
