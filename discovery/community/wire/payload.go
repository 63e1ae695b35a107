package wire

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
)

// Marshal and Unmarshal encode a Go struct the way py-ipv8 encodes a
// dataclass payload: its fields in order, each in the format its type (or
// its `ipv8:"…"` tag) names. Defaults follow py-ipv8's dataclass mapping:
//
//	bool            '?'            uint8  'B'    int8  'b'
//	string          'varlenHutf8'  uint16 'H'    int16 'h'
//	[]byte          'varlenH'      uint32 'I'    int32 'i'
//	[N]byte         N raw bytes    uint64 'Q'    int64, int 'q'
//	float64         'd'            netip.AddrPort 'ip_address'
//	nested struct   its fields inline ('payload')
//	[]T             'arrayH-T': a 2-byte count, then the elements
//
// Tags override: `ipv8:"ipv4"` for an AddrPort, `ipv8:"raw"` for a final
// []byte that takes the rest of the packet, `ipv8:"varlenI"` for a []byte
// with a 4-byte length, `ipv8:"-"` to skip a field. Unexported fields are
// skipped.
//
// Example, the payload py-ipv8 declares as
// `class Hello(DataClassPayload[1]): text: str`:
//
//	type Hello struct{ Text string }

// ErrUnsupportedType: Marshal or Unmarshal was given a type it cannot map.
var ErrUnsupportedType = errors.New("wire: unsupported payload type")

// Marshal appends the encoding of v (a struct or a pointer to one).
func Marshal(b []byte, v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return b, fmt.Errorf("%w: nil pointer", ErrUnsupportedType)
		}
		rv = rv.Elem()
	}
	c, err := codecFor(rv.Type())
	if err != nil {
		return b, err
	}
	w := NewWriter(b)
	c.enc(&w, rv)
	return w.Bytes()
}

// Unmarshal decodes b into the struct v points to; every byte must be used.
// []byte and string fields are copies, so v does not alias b.
func Unmarshal(b []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: Unmarshal needs a non-nil pointer", ErrUnsupportedType)
	}
	rv = rv.Elem()
	c, err := codecFor(rv.Type())
	if err != nil {
		return err
	}
	r := NewReader(b)
	c.dec(&r, rv)
	return r.Done()
}

// codec encodes and decodes one value of a type. min is the smallest
// encoding, used to bound array counts before allocating.
type codec struct {
	enc func(w *Writer, v reflect.Value)
	dec func(r *Reader, v reflect.Value)
	min int
}

var codecs sync.Map // reflect.Type -> *codec

var addrPortType = reflect.TypeFor[netip.AddrPort]()

func codecFor(t reflect.Type) (*codec, error) {
	if c, ok := codecs.Load(t); ok {
		return c.(*codec), nil
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %s is not a struct", ErrUnsupportedType, t)
	}
	c, err := structCodec(t, true, map[reflect.Type]bool{})
	if err != nil {
		return nil, err
	}
	codecs.Store(t, c)
	return c, nil
}

func structCodec(t reflect.Type, top bool, seen map[reflect.Type]bool) (*codec, error) {
	if seen[t] {
		return nil, fmt.Errorf("%w: %s contains itself", ErrUnsupportedType, t)
	}
	seen[t] = true
	defer delete(seen, t)
	type field struct {
		index int
		c     *codec
	}
	var fields []field
	min := 0
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("ipv8")
		if !f.IsExported() || tag == "-" {
			continue
		}
		var c *codec
		var err error
		if tag == "raw" {
			if !top || i != lastExported(t) || f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Uint8 {
				return nil, fmt.Errorf("%w: %s.%s: raw must be the last field of the outer struct, a []byte", ErrUnsupportedType, t, f.Name)
			}
			c = rawCodec
		} else if c, err = fieldCodec(f.Type, tag, seen); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t, f.Name, err)
		}
		fields = append(fields, field{i, c})
		min += c.min
	}
	return &codec{
		min: min,
		enc: func(w *Writer, v reflect.Value) {
			for _, f := range fields {
				f.c.enc(w, v.Field(f.index))
			}
		},
		dec: func(r *Reader, v reflect.Value) {
			for _, f := range fields {
				f.c.dec(r, v.Field(f.index))
			}
		},
	}, nil
}

func lastExported(t reflect.Type) int {
	last := -1
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && f.Tag.Get("ipv8") != "-" {
			last = i
		}
	}
	return last
}

var rawCodec = &codec{
	enc: func(w *Writer, v reflect.Value) { w.Raw(v.Bytes()) },
	dec: func(r *Reader, v reflect.Value) { v.SetBytes(clone(r.Raw())) },
}

func clone(p []byte) []byte {
	if p == nil {
		return nil
	}
	return append(make([]byte, 0, len(p)), p...)
}

func fieldCodec(t reflect.Type, tag string, seen map[reflect.Type]bool) (*codec, error) {
	if t == addrPortType {
		switch tag {
		case "ipv4":
			return &codec{min: 6,
				enc: func(w *Writer, v reflect.Value) { w.IPv4(v.Interface().(netip.AddrPort)) },
				dec: func(r *Reader, v reflect.Value) { v.Set(reflect.ValueOf(r.IPv4())) }}, nil
		case "", "ip_address":
			return &codec{min: 7,
				enc: func(w *Writer, v reflect.Value) { w.IPAddress(v.Interface().(netip.AddrPort)) },
				dec: func(r *Reader, v reflect.Value) { v.Set(reflect.ValueOf(r.IPAddress())) }}, nil
		}
		return nil, fmt.Errorf("%w: tag %q on netip.AddrPort", ErrUnsupportedType, tag)
	}
	if tag != "" && !validScalarTag(t.Kind(), tag) {
		return nil, fmt.Errorf("%w: tag %q on %s", ErrUnsupportedType, tag, t)
	}
	switch t.Kind() {
	case reflect.Bool:
		return &codec{min: 1,
			enc: func(w *Writer, v reflect.Value) { w.Bool(v.Bool()) },
			dec: func(r *Reader, v reflect.Value) { v.SetBool(r.Bool()) }}, nil
	case reflect.Uint8:
		return &codec{min: 1,
			enc: func(w *Writer, v reflect.Value) { w.Uint8(uint8(v.Uint())) },
			dec: func(r *Reader, v reflect.Value) { v.SetUint(uint64(r.Uint8())) }}, nil
	case reflect.Uint16:
		return &codec{min: 2,
			enc: func(w *Writer, v reflect.Value) { w.Uint16(uint16(v.Uint())) },
			dec: func(r *Reader, v reflect.Value) { v.SetUint(uint64(r.Uint16())) }}, nil
	case reflect.Uint32:
		return &codec{min: 4,
			enc: func(w *Writer, v reflect.Value) { w.Uint32(uint32(v.Uint())) },
			dec: func(r *Reader, v reflect.Value) { v.SetUint(uint64(r.Uint32())) }}, nil
	case reflect.Uint64:
		return &codec{min: 8,
			enc: func(w *Writer, v reflect.Value) { w.Uint64(v.Uint()) },
			dec: func(r *Reader, v reflect.Value) { v.SetUint(r.Uint64()) }}, nil
	case reflect.Int8:
		return &codec{min: 1,
			enc: func(w *Writer, v reflect.Value) { w.Int8(int8(v.Int())) },
			dec: func(r *Reader, v reflect.Value) { v.SetInt(int64(r.Int8())) }}, nil
	case reflect.Int16:
		return &codec{min: 2,
			enc: func(w *Writer, v reflect.Value) { w.Int16(int16(v.Int())) },
			dec: func(r *Reader, v reflect.Value) { v.SetInt(int64(r.Int16())) }}, nil
	case reflect.Int32:
		return &codec{min: 4,
			enc: func(w *Writer, v reflect.Value) { w.Int32(int32(v.Int())) },
			dec: func(r *Reader, v reflect.Value) { v.SetInt(int64(r.Int32())) }}, nil
	case reflect.Int64, reflect.Int:
		return &codec{min: 8,
			enc: func(w *Writer, v reflect.Value) { w.Int64(v.Int()) },
			dec: func(r *Reader, v reflect.Value) { v.SetInt(r.Int64()) }}, nil
	case reflect.Float64:
		return &codec{min: 8,
			enc: func(w *Writer, v reflect.Value) { w.Float64(v.Float()) },
			dec: func(r *Reader, v reflect.Value) { v.SetFloat(r.Float64()) }}, nil
	case reflect.String:
		return &codec{min: 2,
			enc: func(w *Writer, v reflect.Value) { w.VarLenHUTF8(v.String()) },
			dec: func(r *Reader, v reflect.Value) { v.SetString(r.VarLenHUTF8()) }}, nil
	case reflect.Array:
		if t.Elem().Kind() != reflect.Uint8 {
			return nil, fmt.Errorf("%w: array of %s (only [N]byte)", ErrUnsupportedType, t.Elem())
		}
		n := t.Len()
		return &codec{min: n,
			enc: func(w *Writer, v reflect.Value) {
				for i := range n {
					w.B = append(w.B, byte(v.Index(i).Uint()))
				}
			},
			dec: func(r *Reader, v reflect.Value) {
				if p := r.Bytes(n); p != nil {
					reflect.Copy(v, reflect.ValueOf(p))
				}
			}}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			if tag == "varlenI" {
				return &codec{min: 4,
					enc: func(w *Writer, v reflect.Value) { w.VarLenI(v.Bytes()) },
					dec: func(r *Reader, v reflect.Value) { v.SetBytes(clone(r.VarLenI())) }}, nil
			}
			return &codec{min: 2,
				enc: func(w *Writer, v reflect.Value) { w.VarLenH(v.Bytes()) },
				dec: func(r *Reader, v reflect.Value) { v.SetBytes(clone(r.VarLenH())) }}, nil
		}
		return arrayCodec(t, seen)
	case reflect.Struct:
		return structCodec(t, false, seen)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedType, t)
}

// validScalarTag accepts a tag that names the type's own default format
// (documentation in the struct), or varlenI on []byte.
func validScalarTag(k reflect.Kind, tag string) bool {
	want := map[reflect.Kind]string{
		reflect.Bool: "?", reflect.Uint8: "B", reflect.Uint16: "H", reflect.Uint32: "I",
		reflect.Uint64: "Q", reflect.Int8: "b", reflect.Int16: "h", reflect.Int32: "i",
		reflect.Int64: "q", reflect.Int: "q", reflect.Float64: "d", reflect.String: "varlenHutf8",
		reflect.Slice: "varlenH varlenI",
	}[k]
	return want != "" && strings.Contains(" "+want+" ", " "+tag+" ")
}

func arrayCodec(t reflect.Type, seen map[reflect.Type]bool) (*codec, error) {
	ec, err := fieldCodec(t.Elem(), "", seen)
	if err != nil {
		return nil, err
	}
	if ec.min == 0 {
		return nil, fmt.Errorf("%w: array of zero-size %s", ErrUnsupportedType, t.Elem())
	}
	return &codec{min: 2,
		enc: func(w *Writer, v reflect.Value) {
			n := v.Len()
			if n > 0xFFFF {
				w.Fail(fmt.Errorf("%w: array of %d elements", ErrTooLong, n))
				return
			}
			w.Uint16(uint16(n))
			for i := range n {
				ec.enc(w, v.Index(i))
			}
		},
		dec: func(r *Reader, v reflect.Value) {
			n := int(r.Uint16())
			if r.Err() != nil {
				return
			}
			// Each element takes at least ec.min bytes: a count the rest
			// of the packet cannot hold is refused before allocating.
			if n*ec.min > r.Len() {
				r.Fail(fmt.Errorf("%w: array of %d elements in %d bytes", ErrShort, n, r.Len()))
				return
			}
			s := reflect.MakeSlice(t, n, n)
			for i := range n {
				ec.dec(r, s.Index(i))
			}
			v.Set(s)
		}}, nil
}
