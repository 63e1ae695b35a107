// Command ipv8 runs and inspects go-ipv8 hosts: create an identity, run a
// node, ping and measure a peer, watch a demo, check the NAT.
//
// Each subcommand lives in its own file and registers itself in init.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	// run parses args (without the subcommand name) and runs. It returns
	// an error to print as one line on stderr.
	run func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("ipv8: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage makes main print the usage of the command and exit 2.
var errUsage = errors.New("usage")

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ipv8 <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'ipv8 <command> -h' for the flags of a command.")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "ipv8: unknown command %q (run 'ipv8 help' for the list)\n", os.Args[1])
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := c.run(ctx, os.Args[2:])
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "ipv8 %s: %s\n", c.name, strings.TrimSpace(err.Error()))
		os.Exit(1)
	}
}

// newFlagSet makes a flag set whose errors are returned, not printed and
// exited on, so that main prints one line.
func newFlagSet(name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet("ipv8 "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: ipv8 %s %s\n", name, usageLine)
		fs.PrintDefaults()
	}
	return fs
}
