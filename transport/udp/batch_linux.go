//go:build linux

package udp

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg or sendmmsg call moves.
const batchSize = 32

// kernelIO returns the reader and batch writer for the port's socket c,
// and how many datagrams a read may return: recvmmsg and sendmmsg on Linux.
//
// They call the system directly rather than through golang.org/x/net's
// ipv4/ipv6 ReadBatch: that one returns each source as a new *net.UDPAddr
// (two allocations per datagram), and WriteBatch takes net.Addr; here the
// addresses stay netip.AddrPort values and nothing is allocated per packet.
func kernelIO(c *net.UDPConn) (reader, batchWriter, int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return connReader{c}, loopWriter{}, 1
	}
	family := unix.AF_INET6
	_ = control(rc, func(fd int) error {
		d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err == nil {
			family = d
		}
		return err
	})
	return newMmsgReader(rc), newMmsgWriter(rc, family), batchSize
}

// mmsgHeaders is the scratch space of one recvmmsg or sendmmsg call.
type mmsgHeaders struct {
	hs    [batchSize]unix.Mmsghdr
	iovs  [batchSize]unix.Iovec
	names [batchSize]unix.RawSockaddrInet6 // big enough for sockaddr_in too

	// The call's arguments and results, so that the function handed to
	// RawConn.Read/Write is a method value bound once, not a closure per call.
	vlen  int
	got   int
	errno syscall.Errno
}

// mmsg calls recvmmsg or sendmmsg (trap) on h.hs[:h.vlen] and reports
// whether the call completed (false: the socket was not ready, wait).
func (h *mmsgHeaders) mmsg(trap, fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&h.hs[0])), uintptr(h.vlen), 0, 0, 0)
		switch e {
		case 0:
			h.got, h.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			h.got, h.errno = 0, e
			return true
		}
	}
}

type mmsgReader struct {
	rc    syscall.RawConn
	h     mmsgHeaders
	fn    func(fd uintptr) bool
	zones map[uint32]string // interface index → name, for link-local sources
}

func newMmsgReader(rc syscall.RawConn) *mmsgReader {
	r := &mmsgReader{rc: rc, zones: make(map[uint32]string)}
	r.fn = r.recv
	return r
}

func (r *mmsgReader) recv(fd uintptr) bool { return r.h.mmsg(unix.SYS_RECVMMSG, fd) }

func (r *mmsgReader) read(ms []inMsg) (int, error) {
	h := &r.h
	h.vlen = min(len(ms), batchSize)
	for i := range h.vlen {
		h.iovs[i].Base = &ms[i].buf[0]
		h.iovs[i].SetLen(len(ms[i].buf))
		hdr := &h.hs[i].Hdr
		hdr.Name = (*byte)(unsafe.Pointer(&h.names[i]))
		hdr.Namelen = unix.SizeofSockaddrInet6
		hdr.Iov = &h.iovs[i]
		hdr.SetIovlen(1)
		hdr.Control = nil
		hdr.SetControllen(0)
		hdr.Flags = 0
		h.hs[i].Len = 0
	}
	if err := r.rc.Read(r.fn); err != nil {
		return 0, err
	}
	if h.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", h.errno)
	}
	for i := range h.got {
		ms[i].n = int(h.hs[i].Len)
		ms[i].trunc = h.hs[i].Hdr.Flags&unix.MSG_TRUNC != 0
		ms[i].addr = r.source(&h.names[i])
	}
	return h.got, nil
}

// source reads the sockaddr the kernel wrote.
func (r *mmsgReader) source(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 && a.IsLinkLocalUnicast() {
			a = a.WithZone(r.zone(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, ntohs(sa.Port))
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), ntohs(sa4.Port))
	}
	return netip.AddrPort{}
}

func (r *mmsgReader) zone(index uint32) string {
	if z, ok := r.zones[index]; ok {
		return z
	}
	z := strconv.FormatUint(uint64(index), 10)
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		z = ifi.Name
	}
	if len(r.zones) < 64 {
		r.zones[index] = z
	}
	return z
}

// ntohs reads a port stored in network byte order.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// htons stores a port in network byte order.
func htons(p uint16) uint16 {
	var v uint16
	b := (*[2]byte)(unsafe.Pointer(&v))
	b[0], b[1] = byte(p>>8), byte(p)
	return v
}

type mmsgWriter struct {
	rc     syscall.RawConn
	family int       // AF_INET or AF_INET6: the form of the destination sockaddrs
	pool   sync.Pool // of *mmsgSend: WriteBatch may run on several goroutines
}

type mmsgSend struct {
	h  mmsgHeaders
	fn func(fd uintptr) bool
}

func newMmsgWriter(rc syscall.RawConn, family int) *mmsgWriter {
	w := &mmsgWriter{rc: rc, family: family}
	w.pool.New = func() any {
		s := new(mmsgSend)
		s.fn = func(fd uintptr) bool { return s.h.mmsg(unix.SYS_SENDMMSG, fd) }
		return s
	}
	return w
}

func (w *mmsgWriter) writeBatch(_ *Port, msgs []Message) (int, error) {
	s := w.pool.Get().(*mmsgSend)
	defer w.pool.Put(s)
	h := &s.h
	sent := 0
	for sent < len(msgs) {
		chunk := msgs[sent:min(len(msgs), sent+batchSize)]
		k, packErr := 0, error(nil)
		for ; k < len(chunk); k++ {
			namelen, err := w.sockaddr(&h.names[k], chunk[k].Addr)
			if err != nil {
				packErr = err
				break
			}
			buf := chunk[k].Buf
			h.iovs[k].Base = nil
			if len(buf) > 0 {
				h.iovs[k].Base = &buf[0]
			}
			h.iovs[k].SetLen(len(buf))
			hdr := &h.hs[k].Hdr
			hdr.Name = (*byte)(unsafe.Pointer(&h.names[k]))
			hdr.Namelen = namelen
			hdr.Iov = &h.iovs[k]
			hdr.SetIovlen(1)
			hdr.Control = nil
			hdr.SetControllen(0)
			hdr.Flags = 0
		}
		// sendmmsg may stop early (a full buffer, an error on one message):
		// go on from where it stopped.
		for off := 0; off < k; {
			h.vlen = k - off
			if off > 0 {
				copy(h.hs[:h.vlen], h.hs[off:k])
			}
			if err := w.rc.Write(s.fn); err != nil {
				clear(h.hs[:])
				return sent + off, err
			}
			if h.errno != 0 {
				clear(h.hs[:])
				return sent + off, os.NewSyscallError("sendmmsg", h.errno)
			}
			off += h.got
		}
		sent += k
		if packErr != nil {
			clear(h.hs[:])
			return sent, packErr
		}
	}
	// Drop the references to the caller's buffers before pooling.
	clear(h.hs[:])
	clear(h.iovs[:])
	return sent, nil
}

// sockaddr writes to as the socket's family wants it: on a dual-stack
// AF_INET6 socket IPv4 becomes IPv4-mapped; on AF_INET it must be IPv4.
func (w *mmsgWriter) sockaddr(sa *unix.RawSockaddrInet6, to netip.AddrPort) (uint32, error) {
	a := to.Addr().Unmap()
	if w.family == unix.AF_INET {
		if !a.Is4() {
			return 0, &net.AddrError{Err: "IPv6 destination on an IPv4 socket", Addr: to.String()}
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(to.Port()), Addr: a.As4()}
		return unix.SizeofSockaddrInet4, nil
	}
	if !a.IsValid() {
		return 0, &net.AddrError{Err: "invalid destination", Addr: to.String()}
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(to.Port()), Addr: a.As16()}
	if z := to.Addr().Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		} else if n, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.Scope_id = uint32(n)
		}
	}
	return unix.SizeofSockaddrInet6, nil
}
