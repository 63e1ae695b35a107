package natlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// In runs f on an OS thread that has entered network namespace ns, so
// that the sockets f opens live in ns (a socket keeps the namespace it was
// created in, whichever thread uses it later). One test process can then
// hold sockets in every namespace of a lab without re-executing itself.
//
// f runs on a goroutine of its own, locked to its thread, which returns to
// the process's namespace afterwards (if it cannot, the goroutine exits
// still locked and the runtime discards the thread), so no other goroutine
// ever runs in ns. f must not start goroutines that open sockets: they
// would run elsewhere.
func (l *Lab) In(ns string, f func() error) error {
	fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("natlab: namespace %s: %w", ns, err)
	}
	defer unix.Close(fd)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("natlab: own namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("natlab: setns %s: %w", ns, err)
			return
		}
		err = f()
		// Back home; a thread that cannot return stays locked and dies
		// with this goroutine. (The main thread, which cannot die, would
		// otherwise keep the process inside ns, and a lab's teardown kills
		// every process it finds in its namespaces.)
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// ListenUDP opens a UDP socket at addr in namespace ns (port 0: any).
func (l *Lab) ListenUDP(ns string, addr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := l.In(ns, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	return c, err
}

// Move gives client a new uplink: the LAN of router's router (router names
// another NAT of the lab) instead of its own. The client gets a new private
// address, returned, and its old link is deleted, so from then on its
// packets leave through the other router with a new public address — an
// IP change under running sockets (bound to the unspecified address), as
// when a laptop moves from one network to another. ClientIP keeps
// reporting the address the client was built with.
//
// The new default route is installed (with a lower priority) before the
// old link goes, so sending never finds the client without a route.
func (l *Lab) Move(client, router string) (netip.Addr, error) {
	if _, ok := l.nats[client]; !ok {
		return netip.Addr{}, fmt.Errorf("natlab: no client %q", client)
	}
	ri, ok := l.nats[router]
	if !ok || ri.Kind == Open {
		return netip.Addr{}, fmt.Errorf("natlab: no router %q (an open client has none)", router)
	}
	l.mu.Lock()
	l.moves++
	k := l.moves
	old := l.uplink[client]
	l.mu.Unlock()
	if k > 250 {
		return netip.Addr{}, errors.New("natlab: too many moves")
	}
	if old == "" {
		old = "eth0"
	}
	cns, rns := l.ClientNS(client), l.RouterNS(router)
	ifc := "eth" + strconv.Itoa(k)
	ifr := "mv" + strconv.Itoa(k)
	gw := netip.AddrFrom4([4]byte{10, 200, byte(k), 1})
	ip := netip.AddrFrom4([4]byte{10, 200, byte(k), 2})
	if err := run("ip", "link", "add", ifc, "netns", cns, "type", "veth", "peer", "name", ifr, "netns", rns); err != nil {
		return netip.Addr{}, err
	}
	steps := [][]string{
		{rns, "ip", "addr", "add", gw.String() + "/24", "dev", ifr},
		{rns, "ip", "link", "set", ifr, "up"},
		{cns, "ip", "addr", "add", ip.String() + "/24", "dev", ifc},
		{cns, "ip", "link", "set", ifc, "up"},
		{cns, "ip", "route", "add", "default", "via", gw.String(), "metric", "100"},
		{cns, "ip", "link", "del", old},
	}
	for _, s := range steps {
		if err := runIn(s[0], s[1:]...); err != nil {
			return netip.Addr{}, err
		}
	}
	l.mu.Lock()
	if l.uplink == nil {
		l.uplink = map[string]string{}
	}
	l.uplink[client] = ifc
	l.mu.Unlock()
	return ip, nil
}

// Conntrack lists the conntrack table of a namespace (a router's), for
// diagnostics; "" when conntrack(8) is missing.
func (l *Lab) Conntrack(ns string) string {
	out, err := l.Command(context.Background(), ns, "conntrack", "-L").CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// FlushConntrack empties the conntrack table of the named client's router
// (nothing for an open client), so that the next flows start from a NAT
// without state: old mappings, and the NAT's choice of port for a new flow
// never meeting an old flow's. It needs conntrack(8).
func (l *Lab) FlushConntrack(client string) error {
	n, ok := l.nats[client]
	if !ok {
		return fmt.Errorf("natlab: no client %q", client)
	}
	if n.Kind == Open {
		return nil
	}
	out, err := l.Command(context.Background(), l.RouterNS(client), "conntrack", "-F").CombinedOutput()
	if err != nil {
		return fmt.Errorf("natlab: conntrack -F in %s: %v: %s", client, err, strings.TrimSpace(string(out)))
	}
	return nil
}
