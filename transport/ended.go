package transport

// Finisher is a Conn that tells whether it has ended without a channel.
// A Conn may make its Done channel only when first asked (an idle Conn
// nobody waits on then holds none), so code that merely checks should ask
// Ended rather than Done.
type Finisher interface {
	// Finished reports whether the Conn has ended (its Done is closed).
	Finished() bool
}

// Ended reports whether c has ended: through Finished when c has it,
// else by looking at Done without waiting.
func Ended(c Conn) bool {
	if f, ok := c.(Finisher); ok {
		return f.Finished()
	}
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}
