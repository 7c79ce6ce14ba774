package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Set by the Makefile's ldflags when the Go build has no VCS stamp (a
// source tarball, -buildvcs=false); the build's own stamp wins.
var (
	commit = ""
	date   = ""
)

// buildInfo returns the version, the commit and its date, as well as the
// build knows them.
func buildInfo() (ver, rev, when string, dirty bool) {
	ver, rev, when = "(devel)", commit, date
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return ver, rev, when, dirty
}

func versionLine() string {
	ver, rev, when, dirty := buildInfo()
	s := "revcent-import " + ver
	if rev != "" {
		s += ", commit " + rev
		if dirty {
			s += " (with uncommitted changes)"
		}
	}
	if when != "" {
		s += ", " + when
	}
	return s
}

func versionCommand(io stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit it was built from and its date",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(io.out, versionLine())
			return nil
		},
	}
}

// flagGroups are the sections of import --help, in order; a flag names
// its group in the "group" annotation.
var flagGroups = []struct{ key, title string }{
	{"input", "Input"},
	{"mapping", "Mapping"},
	{"sending", "Sending"},
	{"rerun", "Rerun"},
	{"output", "Output"},
}

// group puts the named flags of fs in a help group.
func group(fs *pflag.FlagSet, key string, names ...string) {
	for _, n := range names {
		if fs.Lookup(n) == nil {
			panic("group: no flag " + n)
		}
		fs.SetAnnotation(n, "group", []string{key})
	}
}

// groupedUsage prints a command's flags by group, then the rest.
func groupedUsage(c *cobra.Command) error {
	w := c.OutOrStderr()
	fmt.Fprintf(w, "Usage:\n  %s\n", c.UseLine())
	if c.HasExample() {
		fmt.Fprintf(w, "\nExamples:\n%s\n", c.Example)
	}
	sets := map[string]*pflag.FlagSet{}
	other := pflag.NewFlagSet("other", pflag.ContinueOnError)
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		key := "other"
		if g := f.Annotations["group"]; len(g) > 0 {
			key = g[0]
		}
		fs := sets[key]
		if fs == nil {
			fs = pflag.NewFlagSet(key, pflag.ContinueOnError)
			fs.SortFlags = false
			sets[key] = fs
		}
		fs.AddFlag(f)
	})
	for _, g := range flagGroups {
		if fs := sets[g.key]; fs != nil {
			fmt.Fprintf(w, "\n%s flags:\n%s", g.title, fs.FlagUsages())
		}
	}
	if fs := sets["other"]; fs != nil {
		other = fs
	}
	if other.HasFlags() {
		fmt.Fprintf(w, "\nOther flags:\n%s", other.FlagUsages())
	}
	if c.HasAvailableInheritedFlags() {
		fmt.Fprintf(w, "\nGlobal flags:\n%s", c.InheritedFlags().FlagUsages())
	}
	return nil
}

// completeValues registers the fixed values of flags for shell completion.
func completeValues(c *cobra.Command, values map[string][]string) {
	for name, vs := range values {
		if c.Flags().Lookup(name) != nil {
			c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(vs, cobra.ShellCompDirectiveNoFileComp))
		}
	}
}

var inputValues = map[string][]string{
	"format":     {"csv", "tsv", "jsonl", "xlsx"},
	"encoding":   {"utf-8", "utf-16", "utf-16be", "windows-1252", "iso-8859-1"},
	"delimiter":  {",", ";", "tab", "|"},
	"log-format": {"text", "json"},
	"progress":   {"auto", "bar", "log", "none"},
}
