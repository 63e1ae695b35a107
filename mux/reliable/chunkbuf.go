package reliable

import "sync"

// chunkSize is the unit in which stream buffers take memory from a pool, so
// a busy stream allocates nothing in steady state and an idle one holds
// none; small enough that a thousand streams with a short message each
// hold little.
const chunkSize = 4 << 10

type chunk = [chunkSize]byte

var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

// chunkBuf stores the bytes of a stream by offset: the send side keeps what
// the application wrote until it is acknowledged, the receive side what
// arrived (in any order) until the application reads it.
type chunkBuf struct {
	base   uint64 // offset of chunks.at(0)[0], a multiple of chunkSize
	chunks deque[*chunk]
}

// write stores data at offset off (off ≥ base).
func (c *chunkBuf) write(off uint64, data []byte) {
	for len(data) > 0 {
		i := int((off - c.base) / chunkSize)
		for c.chunks.len() <= i {
			c.chunks.pushBack(chunkPool.Get().(*chunk))
		}
		k := int(off % chunkSize)
		n := copy((*c.chunks.at(i))[k:], data)
		data = data[n:]
		off += uint64(n)
	}
}

// appendTo appends the n bytes at offset off to b (they must have been written).
func (c *chunkBuf) appendTo(b []byte, off uint64, n int) []byte {
	for n > 0 {
		i := int((off - c.base) / chunkSize)
		k := int(off % chunkSize)
		m := min(n, chunkSize-k)
		b = append(b, (*c.chunks.at(i))[k:k+m]...)
		off += uint64(m)
		n -= m
	}
	return b
}

// read copies the bytes at offset off into p.
func (c *chunkBuf) read(p []byte, off uint64) {
	for len(p) > 0 {
		i := int((off - c.base) / chunkSize)
		k := int(off % chunkSize)
		n := copy(p, (*c.chunks.at(i))[k:])
		p = p[n:]
		off += uint64(n)
	}
}

// release returns the chunks wholly below offset upTo to the pool.
func (c *chunkBuf) release(upTo uint64) {
	for c.chunks.len() > 0 && c.base+chunkSize <= upTo {
		chunkPool.Put(c.chunks.popFront())
		c.base += chunkSize
	}
	c.chunks.shrink()
}

// reset returns every chunk to the pool and moves the base to off.
func (c *chunkBuf) reset(off uint64) {
	for c.chunks.len() > 0 {
		chunkPool.Put(c.chunks.popFront())
	}
	c.chunks = deque[*chunk]{}
	c.base = off - off%chunkSize
}
