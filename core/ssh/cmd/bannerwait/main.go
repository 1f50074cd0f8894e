// Command bannerwait is a bench helper: it waits until the ssh server at
// ADDR sends its banner and prints that moment in nanoseconds since the
// epoch. test/bench/vms.sh runs it beside a booting guest to tell when sshd
// started answering, so the time lago (or the floor's ssh poll) took to
// notice can be measured apart from the boot, whose length varies by a
// second from one boot to the next.
//
// It starts a connect every 50 ms and keeps the earlier ones pending: a SYN
// sent before the guest has its address is dropped, and a single connect
// would only retry after the kernel's 1 s retransmit.
//
// usage: bannerwait ADDR[:PORT] [TIMEOUT]   (default port 22, timeout 180s)
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: bannerwait ADDR[:PORT] [TIMEOUT]")
		os.Exit(2)
	}
	addr := os.Args[1]
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	timeout := 180 * time.Second
	if len(os.Args) == 3 {
		d, err := time.ParseDuration(os.Args[2])
		if err != nil {
			fmt.Fprintf(os.Stderr, "bannerwait: timeout %q: %v\n", os.Args[2], err)
			os.Exit(2)
		}
		timeout = d
	}
	// One connection at a time gets to read the banner: every accepted
	// connection makes the guest's sshd fork a child, and a flood of them
	// would slow the very logins being measured. Connects that succeed while
	// one is being read are closed at once.
	conns := make(chan net.Conn)
	try := func() {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		select {
		case conns <- c:
		default:
			c.Close()
		}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	go try()
	for {
		select {
		case c := <-conns:
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			at := time.Now()
			c.Close()
			if err == nil && strings.HasPrefix(line, "SSH-") {
				fmt.Println(at.UnixNano())
				return
			}
		case <-tick.C:
			go try()
		case <-deadline:
			fmt.Fprintf(os.Stderr, "bannerwait: no ssh banner from %s within %s\n", addr, timeout)
			os.Exit(1)
		}
	}
}
