package monitoring

import (
	"fmt"
	"sort"
	"strings"
)

// keywords of PromQL that look like identifiers but are not metric names.
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true,
	"inf": true, "nan": true, "start": true, "end": true,
}

// aggregations may be followed by their grouping clause.
var aggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// nextIsGrouping reports whether the next token is "by" or "without".
func (l *lexer) nextIsGrouping() bool {
	l.skipSpace()
	rest := l.s[l.pos:]
	for _, kw := range []string{"by", "without"} {
		if strings.HasPrefix(rest, kw) && (len(rest) == len(kw) || !isIdentChar(rest[len(kw)])) {
			return true
		}
	}
	return false
}

// labelListKeywords are followed by a parenthesised list of label names.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// MetricNames returns the metric names that a PromQL expression selects,
// sorted and without duplicates: the names of its vector selectors, and the
// values of __name__="..." matchers. The expression should be valid PromQL
// (check it with Prometheus first, e.g. with FormatQuery); a __name__ regex
// matcher is an error, since the names it selects cannot be checked.
func MetricNames(expr string) ([]string, error) {
	l := lexer{s: expr}
	names := map[string]bool{}
	for {
		tok, err := l.next()
		if err != nil {
			return nil, err
		}
		switch tok.kind {
		case tkEOF:
			out := make([]string, 0, len(names))
			for n := range names {
				out = append(out, n)
			}
			sort.Strings(out)
			return out, nil
		case tkIdent:
			next := l.peekByte()
			switch {
			case labelListKeywords[tok.text]:
				if next == '(' {
					if err := l.skipGroup('(', ')'); err != nil {
						return nil, err
					}
				}
			case promqlKeywords[tok.text]:
			case next == '(':
				// a function or an aggregation
			case aggregations[tok.text] && l.nextIsGrouping():
				// an aggregation with its grouping first: sum by (x) (...)
			default:
				names[tok.text] = true
			}
		case tkLBrace:
			ns, err := l.matchers()
			if err != nil {
				return nil, err
			}
			for _, n := range ns {
				names[n] = true
			}
		case tkLBracket:
			if err := l.skipUntil(']'); err != nil {
				return nil, err
			}
		}
	}
}

type tokenKind int

const (
	tkEOF tokenKind = iota
	tkIdent
	tkLBrace
	tkLBracket
	tkOther
)

type token struct {
	kind tokenKind
	text string
}

type lexer struct {
	s   string
	pos int
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func (l *lexer) skipSpace() {
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.pos++
		case c == '#':
			for l.pos < len(l.s) && l.s[l.pos] != '\n' {
				l.pos++
			}
		default:
			return
		}
	}
}

func (l *lexer) peekByte() byte {
	l.skipSpace()
	if l.pos < len(l.s) {
		return l.s[l.pos]
	}
	return 0
}

// skipString skips a quoted string starting at l.pos and returns its
// unquoted value (escapes kept as written but for \" and \\).
func (l *lexer) skipString() (string, error) {
	q := l.s[l.pos]
	start := l.pos
	l.pos++
	var b strings.Builder
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		switch {
		case c == '\\' && q != '`' && l.pos+1 < len(l.s):
			b.WriteByte(l.s[l.pos+1])
			l.pos += 2
		case c == q:
			l.pos++
			return b.String(), nil
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return "", fmt.Errorf("unterminated string at offset %d", start)
}

func (l *lexer) next() (token, error) {
	l.skipSpace()
	if l.pos >= len(l.s) {
		return token{kind: tkEOF}, nil
	}
	c := l.s[l.pos]
	switch {
	case c == '"' || c == '\'' || c == '`':
		_, err := l.skipString()
		return token{kind: tkOther}, err
	case c == '{':
		l.pos++
		return token{kind: tkLBrace}, nil
	case c == '[':
		l.pos++
		return token{kind: tkLBracket}, nil
	case isIdentStart(c):
		start := l.pos
		for l.pos < len(l.s) && isIdentChar(l.s[l.pos]) {
			l.pos++
		}
		return token{kind: tkIdent, text: l.s[start:l.pos]}, nil
	case (c >= '0' && c <= '9') || c == '.':
		// numbers and durations (5m, 1h30m, 0x1f, 1e3)
		for l.pos < len(l.s) && (isIdentChar(l.s[l.pos]) || l.s[l.pos] == '.') {
			l.pos++
		}
		return token{kind: tkOther}, nil
	default:
		l.pos++
		return token{kind: tkOther}, nil
	}
}

// skipGroup skips a balanced group that starts at the next byte (open).
func (l *lexer) skipGroup(open, close byte) error {
	l.skipSpace()
	if l.pos >= len(l.s) || l.s[l.pos] != open {
		return fmt.Errorf("expected %q at offset %d", open, l.pos)
	}
	depth := 0
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if _, err := l.skipString(); err != nil {
				return err
			}
			continue
		case c == open:
			depth++
		case c == close:
			depth--
			if depth == 0 {
				l.pos++
				return nil
			}
		}
		l.pos++
	}
	return fmt.Errorf("unbalanced %q", open)
}

func (l *lexer) skipUntil(close byte) error {
	for l.pos < len(l.s) {
		if l.s[l.pos] == close {
			l.pos++
			return nil
		}
		l.pos++
	}
	return fmt.Errorf("missing %q", close)
}

// matchers reads label matchers after '{' up to '}' and returns the values
// of __name__ equality matchers.
func (l *lexer) matchers() ([]string, error) {
	var names []string
	for {
		l.skipSpace()
		if l.pos >= len(l.s) {
			return nil, fmt.Errorf("unterminated label matchers")
		}
		c := l.s[l.pos]
		switch {
		case c == '}':
			l.pos++
			return names, nil
		case c == ',':
			l.pos++
		case isIdentStart(c) || c == '"':
			var label string
			if c == '"' {
				v, err := l.skipString()
				if err != nil {
					return nil, err
				}
				label = v
			} else {
				start := l.pos
				for l.pos < len(l.s) && isIdentChar(l.s[l.pos]) {
					l.pos++
				}
				label = l.s[start:l.pos]
			}
			l.skipSpace()
			opStart := l.pos
			for l.pos < len(l.s) && strings.IndexByte("=!~", l.s[l.pos]) >= 0 {
				l.pos++
			}
			op := l.s[opStart:l.pos]
			l.skipSpace()
			if op == "" {
				// a quoted metric name alone ({"metric"}, UTF-8 names)
				names = append(names, label)
				continue
			}
			if l.pos >= len(l.s) || (l.s[l.pos] != '"' && l.s[l.pos] != '\'' && l.s[l.pos] != '`') {
				return nil, fmt.Errorf("expected a string after %s%s at offset %d", label, op, l.pos)
			}
			v, err := l.skipString()
			if err != nil {
				return nil, err
			}
			if label == "__name__" {
				if op != "=" {
					return nil, fmt.Errorf("__name__%s%q selects names that cannot be checked", op, v)
				}
				names = append(names, v)
			}
		default:
			return nil, fmt.Errorf("unexpected %q in label matchers at offset %d", c, l.pos)
		}
	}
}
