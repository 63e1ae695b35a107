//go:build linux

package udp

import (
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams (or, with GSO, runs of datagrams) one
// recvmmsg or sendmmsg call moves.
const batchSize = 32

// The limits of UDP segmentation offload (GSO: one send of a run of
// equal-sized datagrams that the kernel splits as late as it can) and of
// receive offload (GRO: the kernel hands over a run of datagrams of one
// flow as one buffer plus the segment size).
const (
	// maxGSOSegments is UDP_MAX_SEGMENTS of every kernel since GSO came
	// (4.18); later ones take more, but not all of them.
	maxGSOSegments = 64
	// maxGSOBytes bounds a run: until the kernel splits it, it is one UDP
	// datagram, and an IPv4 datagram holds at most this much payload.
	maxGSOBytes = 0xFFFF - 20 - 8
	// maxSendIovs bounds the iovecs of one sendmmsg call: each datagram of a
	// run that is not contiguous with the one before takes one.
	maxSendIovs = batchSize * 8
	// groBufSize is the read buffer a coalesced datagram may need: the
	// kernel coalesces up to 64 KiB.
	groBufSize = 1 << 16
	// oobSize holds one UDP_SEGMENT or UDP_GRO control message.
	oobSize = 32
)

// kernelIO returns the reader and batch writer for the port's socket c,
// and how many datagrams a read may return: recvmmsg and sendmmsg on Linux,
// with UDP GSO when the kernel offers it and cfg allows it, and a reader
// that can turn on UDP GRO once the port is busy.
//
// They call the system directly rather than through golang.org/x/net's
// ipv4/ipv6 ReadBatch: that one returns each source as a new *net.UDPAddr
// (two allocations per datagram), and WriteBatch takes net.Addr; here the
// addresses stay netip.AddrPort values and nothing is allocated per packet.
func kernelIO(c *net.UDPConn, cfg Config) (reader, batchWriter, int) {
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
	gso := !cfg.DisableGSO && probeUDPOption(rc, unix.UDP_SEGMENT)
	gro := !cfg.DisableGRO && probeUDPOption(rc, unix.UDP_GRO)
	cfg.Logger.Debug("udp port: offloads", "gso", gso, "gro", gro)
	return newMmsgReader(rc, gro), newMmsgWriter(rc, family, gso, cfg.Logger), batchSize
}

// probeUDPOption reports whether the kernel knows a UDP socket option
// (reading it fails on kernels without it), as quic-go probes for GSO.
func probeUDPOption(rc syscall.RawConn, opt int) bool {
	return control(rc, func(fd int) error {
		_, err := unix.GetsockoptInt(fd, unix.IPPROTO_UDP, opt)
		return err
	}) == nil
}

// mmsgHeaders is the scratch space of one recvmmsg or sendmmsg call.
type mmsgHeaders struct {
	hs    [batchSize]unix.Mmsghdr
	names [batchSize]unix.RawSockaddrInet6 // big enough for sockaddr_in too
	oob   [batchSize][oobSize]byte

	// The call's arguments and results, so that the function handed to
	// RawConn.Read/Write is a method value bound once, not a closure per call.
	start, vlen int
	got         int
	errno       syscall.Errno
}

// mmsg calls recvmmsg or sendmmsg (trap) on h.hs[h.start:h.start+h.vlen]
// and reports whether the call completed (false: the socket was not ready,
// wait).
func (h *mmsgHeaders) mmsg(trap, fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&h.hs[h.start])), uintptr(h.vlen), 0, 0, 0)
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
	iovs  [batchSize]unix.Iovec
	fn    func(fd uintptr) bool
	zones map[uint32]string // interface index → name, for link-local sources

	groOK bool // the kernel has UDP_GRO and the config allows it
	gro   bool // turned on: reads carry the segment size of coalesced datagrams
}

func newMmsgReader(rc syscall.RawConn, groOK bool) *mmsgReader {
	r := &mmsgReader{rc: rc, zones: make(map[uint32]string), groOK: groOK}
	r.fn = r.recv
	return r
}

func (r *mmsgReader) recv(fd uintptr) bool { return r.h.mmsg(unix.SYS_RECVMMSG, fd) }

// enableGRO asks the kernel to coalesce datagrams; the caller has given
// every buffer groBufSize bytes first.
func (r *mmsgReader) enableGRO() bool {
	if !r.groOK || r.gro {
		return r.gro
	}
	r.groOK = false // one try
	err := control(r.rc, func(fd int) error {
		return unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_GRO, 1)
	})
	r.gro = err == nil
	return r.gro
}

func (r *mmsgReader) canGRO() bool { return r.groOK && !r.gro }

func (r *mmsgReader) read(ms []inMsg) (int, error) {
	h := &r.h
	h.start, h.vlen = 0, min(len(ms), batchSize)
	for i := range h.vlen {
		r.iovs[i].Base = &ms[i].buf[0]
		r.iovs[i].SetLen(len(ms[i].buf))
		hdr := &h.hs[i].Hdr
		hdr.Name = (*byte)(unsafe.Pointer(&h.names[i]))
		hdr.Namelen = unix.SizeofSockaddrInet6
		hdr.Iov = &r.iovs[i]
		hdr.SetIovlen(1)
		if r.gro {
			hdr.Control = &h.oob[i][0]
			hdr.SetControllen(oobSize)
		} else {
			hdr.Control = nil
			hdr.SetControllen(0)
		}
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
		m := &ms[i]
		m.n = int(h.hs[i].Len)
		m.trunc = h.hs[i].Hdr.Flags&unix.MSG_TRUNC != 0
		m.addr = r.source(&h.names[i])
		m.seg = 0
		if r.gro {
			m.seg = groSegmentSize(h.oob[i][:min(int(h.hs[i].Hdr.Controllen), oobSize)])
		}
	}
	return h.got, nil
}

// groSegmentSize finds the UDP_GRO control message in oob and returns the
// segment size it gives (0: the datagram was not coalesced).
func groSegmentSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(c.Len)
		if n < unix.SizeofCmsghdr || n > len(oob) {
			return 0
		}
		if c.Level == unix.IPPROTO_UDP && c.Type == unix.UDP_GRO && n >= unix.CmsgLen(4) {
			return int(binary.NativeEndian.Uint32(oob[unix.CmsgLen(0):]))
		}
		oob = oob[min(unix.CmsgSpace(n-unix.CmsgLen(0)), len(oob)):]
	}
	return 0
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
	family int         // AF_INET or AF_INET6: the form of the destination sockaddrs
	gso    atomic.Bool // UDP_SEGMENT works; cleared when the kernel refuses it for good
	log    *slog.Logger
	pool   sync.Pool // of *mmsgSend: WriteBatch may run on several goroutines
}

// mmsgSend is the scratch space of one WriteBatch.
type mmsgSend struct {
	h     mmsgHeaders
	iovs  [maxSendIovs]unix.Iovec
	count [batchSize]int // messages in each header (a GSO run has several)
	fn    func(fd uintptr) bool
}

func newMmsgWriter(rc syscall.RawConn, family int, gso bool, log *slog.Logger) *mmsgWriter {
	w := &mmsgWriter{rc: rc, family: family, log: log}
	w.gso.Store(gso)
	w.pool.New = func() any {
		s := new(mmsgSend)
		s.fn = func(fd uintptr) bool { return s.h.mmsg(unix.SYS_SENDMMSG, fd) }
		return s
	}
	return w
}

// writeBatch sends msgs with sendmmsg. With GSO, each run of messages to
// one address with one size (the last may be shorter) goes as one
// datagram the kernel splits (UDP_SEGMENT): one header, one pass through
// the stack, instead of one per datagram.
func (w *mmsgWriter) writeBatch(p *Port, msgs []Message) (int, error) {
	s := w.pool.Get().(*mmsgSend)
	defer w.pool.Put(s)
	h := &s.h
	gso := w.gso.Load()
	sent := 0
	for sent < len(msgs) {
		k, iovs, packErr := s.pack(w, msgs[sent:], gso)
		repack := false
		// sendmmsg may stop early (a full buffer, an error on one message):
		// go on from where it stopped.
		for off := 0; off < k; {
			h.start, h.vlen = off, k-off
			if err := w.rc.Write(s.fn); err != nil {
				s.release(iovs)
				return sent, err
			}
			if h.errno != 0 {
				if s.count[off] > 1 && isGSOError(h.errno) {
					// The kernel refuses this run as one datagram: send it
					// and the rest one datagram per message. EIO means the
					// route cannot offload (no checksum offload, IPsec):
					// stop trying; EINVAL is about this run (a segment
					// larger than the path's MTU).
					if h.errno == unix.EIO && w.gso.CompareAndSwap(true, false) {
						w.log.Info("udp port: the kernel refused GSO, sending one datagram per message", "err", h.errno)
					}
					gso, repack = false, true
					break
				}
				s.release(iovs)
				return sent, os.NewSyscallError("sendmmsg", h.errno)
			}
			for _, c := range s.count[off : off+h.got] {
				if c > 1 {
					p.ctr.gsoSends.Add(1)
					p.ctr.gsoSegments.Add(uint64(c))
				}
				sent += c
			}
			off += h.got
		}
		s.release(iovs)
		if repack {
			continue
		}
		if packErr != nil {
			return sent, packErr
		}
	}
	return sent, nil
}

func isGSOError(e syscall.Errno) bool { return e == unix.EIO || e == unix.EINVAL }

// pack fills headers for the first messages of msgs, as many as one call
// takes, and returns how many headers and iovecs it used. With gso, a run
// of messages to one address with one size, the last maybe shorter, shares
// a header with a UDP_SEGMENT control message. packErr is set when the
// message after those packed cannot be sent at all (its address).
func (s *mmsgSend) pack(w *mmsgWriter, msgs []Message, gso bool) (k, iovs int, packErr error) {
	h := &s.h
	i := 0
	for k < batchSize && i < len(msgs) {
		m := &msgs[i]
		namelen, err := w.sockaddr(&h.names[k], m.Addr)
		if err != nil {
			return k, iovs, err
		}
		j := i + 1
		size := len(m.Buf)
		if gso && size > 0 {
			total := size
			for j < len(msgs) && j-i < maxGSOSegments {
				n := len(msgs[j].Buf)
				if n == 0 || n > size || total+n > maxGSOBytes || msgs[j].Addr != m.Addr {
					break
				}
				total += n
				j++
				if n < size {
					break // a shorter datagram ends the run
				}
			}
		}
		if iovs+(j-i) > len(s.iovs) {
			break // next call (a run never exceeds the iovecs on its own)
		}
		first := iovs
		for _, mm := range msgs[i:j] {
			b := mm.Buf
			if iovs > first && len(b) > 0 && contiguous(&s.iovs[iovs-1], b) {
				s.iovs[iovs-1].SetLen(int(s.iovs[iovs-1].Len) + len(b))
				continue
			}
			s.iovs[iovs].Base = nil
			if len(b) > 0 {
				s.iovs[iovs].Base = &b[0]
			}
			s.iovs[iovs].SetLen(len(b))
			iovs++
		}
		hdr := &h.hs[k].Hdr
		hdr.Name = (*byte)(unsafe.Pointer(&h.names[k]))
		hdr.Namelen = namelen
		hdr.Iov = &s.iovs[first]
		hdr.SetIovlen(iovs - first)
		hdr.Control = nil
		hdr.SetControllen(0)
		if j-i > 1 {
			n := putSegmentSize(&h.oob[k], size)
			hdr.Control = &h.oob[k][0]
			hdr.SetControllen(n)
		}
		hdr.Flags = 0
		s.count[k] = j - i
		k++
		i = j
	}
	return k, iovs, nil
}

// contiguous reports whether b starts where the iovec ends (a sealer that
// writes a batch back to back gives the kernel one iovec per run).
func contiguous(v *unix.Iovec, b []byte) bool {
	return uintptr(unsafe.Pointer(v.Base))+uintptr(v.Len) == uintptr(unsafe.Pointer(&b[0]))
}

// putSegmentSize writes the UDP_SEGMENT control message for segments of
// size bytes and returns its length.
func putSegmentSize(oob *[oobSize]byte, size int) int {
	c := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	c.Level = unix.IPPROTO_UDP
	c.Type = unix.UDP_SEGMENT
	c.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	return unix.CmsgSpace(2)
}

// release drops the references to the caller's buffers before pooling.
func (s *mmsgSend) release(iovs int) {
	clear(s.h.hs[:])
	clear(s.iovs[:iovs])
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
