package reliable

// deque is a growable ring buffer: push at the back, pop at the front,
// index from the front. Steady-state use allocates nothing. Its indexes
// are 32-bit (a Conn holds eight deques, and its size is what an idle Conn
// costs); no queue comes near 2^31 entries.
type deque[T any] struct {
	buf  []T
	head int32
	n    int32
}

func (d *deque[T]) len() int { return int(d.n) }

func (d *deque[T]) pushBack(v T) {
	if int(d.n) == len(d.buf) {
		d.grow()
	}
	d.buf[int(d.head+d.n)&(len(d.buf)-1)] = v
	d.n++
}

// at returns a pointer to the i-th element from the front (0 ≤ i < len).
func (d *deque[T]) at(i int) *T { return &d.buf[(int(d.head)+i)&(len(d.buf)-1)] }

func (d *deque[T]) front() *T { return d.at(0) }

func (d *deque[T]) popFront() T {
	var zero T
	v := d.buf[d.head]
	d.buf[d.head] = zero
	d.head = (d.head + 1) & int32(len(d.buf)-1)
	d.n--
	return v
}

// grow doubles the ring (its size stays a power of two).
func (d *deque[T]) grow() {
	size := 2 * len(d.buf)
	if size == 0 {
		size = 4
	}
	nb := make([]T, size)
	for i := 0; i < int(d.n); i++ {
		nb[i] = *d.at(i)
	}
	d.buf, d.head = nb, 0
}

// shrink releases the backing array of an empty deque that grew large, so
// that an idle connection holds little memory.
func (d *deque[T]) shrink() {
	if d.n == 0 && len(d.buf) > 64 {
		d.buf, d.head = nil, 0
	}
}

// release drops the backing array of an empty deque, whatever its size: for
// queues that empty whenever the connection falls idle (the sent-packet
// history), so that an idle connection holds none. The next push
// allocates a small ring again.
func (d *deque[T]) release() {
	if d.n == 0 {
		d.buf, d.head = nil, 0
	}
}
