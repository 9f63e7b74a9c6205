// The scanner's JSON grammar: arrays, objects, strings, numbers and
// literals parsed from a buffer, every value checked, only the members a
// decoder keeps handed to it. The scanner's input is in scanner_stream.go,
// its users in tasks_decode.go and services_decode.go.

package swarm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
)

// maxDepth is the deepest nesting accepted, as json v2 accepts.
const maxDepth = 10000

var (
	errWrongType  = errors.New("wrong JSON type")
	errSyntax     = errors.New("invalid JSON")
	errTooDeep    = errors.New("JSON nested too deeply")
	errIncomplete = errors.New("more input needed") // internal: the value runs past the buffer
)

// memberFunc parses the value of an object's member named key (unquoted,
// valid until the next string is read) at b[i] and returns the offset
// past it.
type memberFunc func(key, b []byte, i int) (int, error)

// list parses the array (or null) that r holds, calling each with every
// element's offset in the buffer; each returns the offset past the element.
// When the element runs past the buffer, each returns errIncomplete (the
// scanner's methods do) and is called again with more bytes: it must not
// keep anything of a call that failed.
func (s *scanner) list(r io.Reader, each func(b []byte, i int) (int, error)) error {
	s.buf, s.start, s.end, s.off, s.eof, s.rerr = nil, 0, 0, 0, false, nil
	s.read(r)
	defer s.stopReading()
	c, err := s.peek()
	if err != nil {
		return err
	}
	switch c {
	case 'n':
		return s.parse(s.literal)
	case '[':
		s.start++
	default:
		return s.wrongTypeAt(s.buf[:s.end], s.start, "an array")
	}
	if c, err = s.peek(); err != nil {
		return err
	}
	if c == ']' {
		s.start++
		return nil
	}
	for {
		if _, err := s.peek(); err != nil { // skip the space before the element
			return err
		}
		if err := s.parse(each); err != nil {
			return err
		}
		if c, err = s.peek(); err != nil {
			return err
		}
		s.start++
		switch c {
		case ',':
		case ']':
			return nil
		default:
			return s.syntaxError(s.start-1, "',' or ']' after an element")
		}
	}
}

// object parses an object or null at b[i]. For null it calls null (if not
// nil), for an object open (if not nil) and then each for every member.
func (s *scanner) object(b []byte, i int, null, open func(), each memberFunc) (int, error) {
	if i >= len(b) {
		return i, s.more()
	}
	switch b[i] {
	case 'n':
		next, err := s.literal(b, i)
		if err == nil && null != nil {
			null()
		}
		return next, err
	case '{':
		if open != nil {
			open()
		}
	}
	return s.members(b, i, each)
}

// array parses an array or null at b[i]. For null it calls null, for an
// array open and then each for every element; each returns the offset
// past the element.
func (s *scanner) array(b []byte, i int, null, open func(), each func(b []byte, i int) (int, error)) (int, error) {
	if i >= len(b) {
		return i, s.more()
	}
	switch b[i] {
	case 'n':
		next, err := s.literal(b, i)
		if err == nil {
			null()
		}
		return next, err
	case '[':
		open()
	default:
		return i, s.wrongTypeAt(b, i, "an array")
	}
	if i = skipSpace(b, i+1); i >= len(b) {
		return i, s.more()
	}
	if b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = each(b, i); err != nil {
			return i, err
		}
		if i = skipSpace(b, i); i >= len(b) {
			return i, s.more()
		}
		switch b[i] {
		case ',':
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, s.more()
			}
		case ']':
			return i + 1, nil
		default:
			return i, s.syntaxError(i, "',' or ']' after an array element")
		}
	}
}

// peek skips whitespace and returns the next byte, reading more as needed.
func (s *scanner) peek() (byte, error) {
	for {
		s.start = skipSpace(s.buf[:s.end], s.start)
		if s.start < s.end {
			return s.buf[s.start], nil
		}
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
}

// parse runs p on the buffered bytes from s.start, reading more and running
// it again while the value it parses runs past them.
func (s *scanner) parse(p func(b []byte, i int) (int, error)) error {
	for {
		next, err := p(s.buf[:s.end], s.start)
		if err != errIncomplete {
			if err != nil {
				return err
			}
			s.start = next
			return nil
		}
		if err := s.fill(); err != nil {
			return err
		}
	}
}

// members parses the object at b[i], calling each with every member's
// name (unquoted, valid until the next string is read) and the offset of
// its value; each returns the offset past the value.
func (s *scanner) members(b []byte, i int, each func(key []byte, b []byte, i int) (int, error)) (int, error) {
	if i >= len(b) {
		return i, s.more()
	}
	if b[i] != '{' {
		return i, s.wrongTypeAt(b, i, "an object")
	}
	if i = skipSpace(b, i+1); i >= len(b) {
		return i, s.more()
	}
	if b[i] == '}' {
		return i + 1, nil
	}
	for {
		key, next, err := s.name(b, i)
		if err != nil {
			return next, err
		}
		if i, err = each(key, b, next); err != nil {
			return i, err
		}
		if i = skipSpace(b, i); i >= len(b) {
			return i, s.more()
		}
		switch b[i] {
		case ',':
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, s.more()
			}
		case '}':
			return i + 1, nil
		default:
			return i, s.syntaxError(i, "',' or '}' after an object member")
		}
	}
}

// name parses a member name and its colon at b[i], and returns the name
// and the offset of the value.
func (s *scanner) name(b []byte, i int) ([]byte, int, error) {
	if i >= len(b) {
		return nil, i, s.more()
	}
	if b[i] != '"' {
		return nil, i, s.syntaxError(i, "a member name")
	}
	// Every name the decoders look for is ASCII: a name that is not valid
	// UTF-8 matches none of them, unquoted or not, so only a name with
	// escapes needs unquoting.
	end, escaped, err := s.stringEnd(b, i)
	if err != nil {
		return nil, end, err
	}
	key := b[i+1 : end-1]
	if escaped {
		if key, end, err = s.quoted(b, i); err != nil {
			return nil, end, err
		}
	}
	if i = skipSpace(b, end); i >= len(b) {
		return nil, i, s.more()
	}
	if b[i] != ':' {
		return nil, i, s.syntaxError(i, "':' after a member name")
	}
	if i = skipSpace(b, i+1); i >= len(b) {
		return nil, i, s.more()
	}
	return key, i, nil
}

// str parses a string or null at b[i]; null reads as empty.
func (s *scanner) str(b []byte, i int) ([]byte, int, error) {
	switch {
	case i >= len(b):
		return nil, i, s.more()
	case b[i] == '"':
		return s.quoted(b, i)
	case b[i] == 'n':
		next, err := s.literal(b, i)
		return nil, next, err
	default:
		return nil, i, s.wrongTypeAt(b, i, "a string")
	}
}

// quoted parses the string at b[i] (a '"') and returns its unquoted bytes,
// valid until the next string is read.
func (s *scanner) quoted(b []byte, i int) ([]byte, int, error) {
	end, escaped, err := s.stringEnd(b, i)
	if err != nil {
		return nil, end, err
	}
	if v := b[i+1 : end-1]; !escaped && utf8.Valid(v) {
		return v, end, nil
	}
	// Escapes or invalid UTF-8: unquote as json v2 does with decodeOptions
	// for the other answers, so that an ID reads the same in every list.
	var v string
	if err := json.Unmarshal(b[i:end], &v, decodeOptions); err != nil {
		return nil, end, err
	}
	s.scratch = append(s.scratch[:0], v...)
	return s.scratch, end, nil
}

// stringEnd returns the offset past the string at b[i] (a '"') and whether
// it has escape sequences, which it checks. Most strings are short (names,
// IDs, timestamps), so it looks for the quote or a backslash eight bytes at
// a time in a machine word rather than calling bytes.IndexByte twice.
func (s *scanner) stringEnd(b []byte, i int) (end int, escaped bool, err error) {
	j := i + 1
	for {
		// Find the next quote or backslash.
		for {
			if j+8 > len(b) {
				for j < len(b) && b[j] != '"' && b[j] != '\\' {
					j++
				}
				if j >= len(b) {
					return len(b), escaped, s.more()
				}
				break
			}
			if m := quoteOrBackslash(binary.LittleEndian.Uint64(b[j:])); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		if b[j] == '\\' {
			// Skip the escaped byte: it may be a quote.
			escaped = true
			j += 2
			continue
		}
		if escaped {
			if k := validEscapes(b[i+1 : j]); k >= 0 {
				return j + 1, true, s.syntaxError(i+1+k, "a valid escape sequence")
			}
		}
		return j + 1, escaped, nil
	}
}

// quoteOrBackslash returns a word whose lowest set bit is the high bit of
// the first byte of w (in memory order) that is '"' or '\\', or 0 if none is:
// (x - 0x01…01) &^ x & 0x80…80 flags the zero bytes of x, exactly up to the
// first one.
func quoteOrBackslash(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	s := w ^ (ones * '\\')
	return ((q-ones)&^q | (s-ones)&^s) & highs
}

// validEscapes returns the offset of the first invalid escape sequence in
// the content of a string, or -1.
func validEscapes(s []byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if i+1 >= len(s) {
			return i
		}
		switch s[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if i+6 > len(s) {
				return i
			}
			for _, h := range s[i+2 : i+6] {
				if !isHex(h) {
					return i
				}
			}
			i += 5
		default:
			return i
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skip parses the value at b[i] without keeping it and returns the offset
// past it. Nested containers are tracked on a stack, not by recursion.
func (s *scanner) skip(b []byte, i int) (int, error) {
	stack := s.stack[:0]
	defer func() { s.stack = stack[:0] }()
	for {
		// A value.
		if i >= len(b) {
			return i, s.more()
		}
		var err error
		switch c := b[i]; c {
		case '"':
			i, _, err = s.stringEnd(b, i)
		case '{', '[':
			if len(stack) == maxDepth {
				return i, s.errorAt(i, errTooDeep)
			}
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, s.more()
			}
			if b[i] == c+2 { // '}' is '{'+2 and ']' is '['+2
				i++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if _, i, err = s.name(b, i); err != nil {
					return i, err
				}
			}
			continue
		case 't', 'f', 'n':
			i, err = s.literal(b, i)
		default:
			i, err = s.number(b, i)
		}
		if err != nil {
			return i, err
		}
		// What follows a value: the end of the containers it closes, then a
		// comma and the next value, or the end of the value skipped.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			if i = skipSpace(b, i); i >= len(b) {
				return i, s.more()
			}
			top := stack[len(stack)-1]
			c := b[i]
			if c == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if c != ',' {
				return i, s.syntaxError(i, "',' or the end of the container")
			}
			if i = skipSpace(b, i+1); i >= len(b) {
				return i, s.more()
			}
			if top == '{' {
				if _, i, err = s.name(b, i); err != nil {
					return i, err
				}
			}
			break
		}
	}
}

// literal parses true, false or null at b[i].
func (s *scanner) literal(b []byte, i int) (int, error) {
	var lit string
	switch b[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	n := min(len(lit), len(b)-i)
	if string(b[i:i+n]) != lit[:n] {
		return i, fmt.Errorf("%w: invalid literal", errSyntax)
	}
	if n < len(lit) {
		return len(b), s.more()
	}
	return i + n, nil
}

// number checks the grammar of the number at b[i].
func (s *scanner) number(b []byte, i int) (int, error) {
	start := i
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		if i >= len(b) {
			return i, s.more()
		}
		return i, s.syntaxError(start, "a value")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			if i >= len(b) {
				return i, s.more()
			}
			return i, s.syntaxError(i, "a digit")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			if i >= len(b) {
				return i, s.more()
			}
			return i, s.syntaxError(i, "a digit")
		}
	}
	if i >= len(b) {
		// The number may go on in the bytes to come.
		return i, s.more()
	}
	return i, nil
}

// uint parses a number or null (0) at b[i] into *dst: an integer in the
// range of uint64, as json v2 requires.
func (s *scanner) uint(b []byte, i int, dst *uint64) (int, error) {
	switch {
	case i >= len(b):
		return i, s.more()
	case b[i] == 'n':
		*dst = 0
		return s.literal(b, i)
	case b[i] != '-' && (b[i] < '0' || b[i] > '9'):
		return i, s.wrongTypeAt(b, i, "a number")
	}
	end, err := s.number(b, i)
	if err != nil {
		return end, err
	}
	var n uint64
	for _, c := range b[i:end] {
		d := uint64(c - '0')
		if d > 9 || n > (math.MaxUint64-d)/10 {
			return end, fmt.Errorf("%w at offset %d: %s is not an unsigned 64-bit integer", errWrongType, s.off+int64(i), b[i:end])
		}
		n = n*10 + d
	}
	*dst = n
	return end, nil
}

// version parses one of Docker's Version objects ({"Index": n}) or null
// at b[i] into *index, and records in *present (when not nil) whether it
// was an object: json v2's decoding into a *struct{ Index uint64 }.
func (s *scanner) version(b []byte, i int, index *uint64, present *bool) (int, error) {
	return s.object(b, i, func() {
		*index = 0
		if present != nil {
			*present = false
		}
	}, func() {
		if present != nil {
			*present = true
		}
	}, func(key, b []byte, i int) (int, error) {
		if string(key) == "Index" {
			return s.uint(b, i, index)
		}
		return s.skip(b, i)
	})
}

// more says that the bytes ran out: at the end of the input, the body was
// cut short (or could not be read); otherwise, parse again with more bytes.
func (s *scanner) more() error {
	switch {
	case !s.eof:
		return errIncomplete
	case s.rerr != nil:
		return s.rerr
	default:
		return fmt.Errorf("%w at offset %d", io.ErrUnexpectedEOF, s.off+int64(s.end))
	}
}

func (s *scanner) errorAt(i int, err error) error {
	return fmt.Errorf("%w at offset %d", err, s.off+int64(i))
}

func (s *scanner) syntaxError(i int, want string) error {
	return fmt.Errorf("%w at offset %d: expected %s", errSyntax, s.off+int64(i), want)
}

func (s *scanner) wrongTypeAt(b []byte, i int, want string) error {
	return fmt.Errorf("%w at offset %d: expected %s, got %q", errWrongType, s.off+int64(i), want, b[i])
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\n', '\r', '\t':
			i++
		default:
			return i
		}
	}
	return i
}
