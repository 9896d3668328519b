// Command service is the Go side of the TinyMLS demo (make demo): a service
// whose replicas send encrypted messages to consumers in C, Python and Go,
// all members of one shared group whose epochs follow the clock.
//
//	service run --c-consumer BIN --py-consumer "PYTHON consumer.py" [--seconds 10]
//	service replica ...   one replica process (replica.go; started by run)
//	service consumer ...  the Go consumer (consumer.go; started by run)
//
// "run" (run.go) is the orchestrator. It draws a random group secret and
// starts, each as its own process:
//
//   - a C consumer and a Python consumer, for the whole run;
//   - two replicas of the service, "busy" (2000 messages a second) and
//     "quiet" (50 a second), each sending every message to every consumer
//     over a Unix socket.
//
// Halfway through it kills the busy replica with SIGKILL, starts a Go
// consumer (the late joiner), and starts the busy replica again: a new
// process, incarnation 2, that knows nothing but the group secret. The
// quiet replica connects to the late consumer and sends it its last 3 s of
// messages first, then every new one. Three quarters of the way through,
// the quiet replica sends one tampered message and one replay, on purpose
// and labelled as such: every consumer must refuse them (AUTH, REPLAY).
//
// Nobody coordinates epochs. Every process joins with the default
// configuration, ratchet_period_ms = 100: a shared group's current epoch is
// floor(unix_ms / 100) at every member (SPEC v2 section 7.2), so keys rotate
// ten times a second everywhere, the busy and the quiet replica encrypt
// under the same epochs however unevenly they send, and a process that
// (re)starts from the group secret is in step at once. Each member keeps 64
// epochs (6.4 s), which is how far back a late joiner reads.
//
// The orchestrator exits non-zero if any message was lost (see run.go for
// the exact rule), misread, duplicated or refused, or if a deliberate
// attack was not refused. The group secret goes to each child on its
// standard input, never on a command line, and is never printed.
package main

import (
	"fmt"
	"os"
)

func main() {
	cmd := ""
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	switch cmd {
	case "run":
		os.Exit(runDemo(os.Args[2:]))
	case "replica":
		os.Exit(runReplica(os.Args[2:]))
	case "consumer":
		os.Exit(runConsumer(os.Args[2:]))
	default:
		fmt.Fprintln(os.Stderr, "usage: service run|replica|consumer [arguments] (see main.go)")
		os.Exit(2)
	}
}
