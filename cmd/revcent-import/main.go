// Command revcent-import loads prospect and customer lists (CSV, TSV or
// JSONL) into RevCent through its CreateCustomer API, rate-limited and
// resumable: every row ends up created exactly once, or explained in the
// results file.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Logs are best effort; the results file is the record. With SIGPIPE
	// delivered here rather than killing the process, a closed pipe on
	// stdout or stderr (2>&1 | head) fails that write, and the run goes on.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		// First signal: stop reading, let requests in flight finish and be
		// recorded, exit 4.
		fmt.Fprintln(os.Stderr, "\nrevcent-import: stopping: finishing requests in flight (press Ctrl-C again to quit at once)")
		cancel()
		<-sigs
		// Second signal: quit now. Every pending line reached the OS before
		// its request; a partial last line is repaired by --resume.
		fmt.Fprintln(os.Stderr, "revcent-import: quit; rerun with --resume to continue")
		os.Exit(exitInterrupted)
	}()
	os.Exit(run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.Getenv))
}
