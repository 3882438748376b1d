package traffic

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
)

// CookieMatch turns a match on a cookie (c.Name is the cookie's name,
// and exactly one of Value, Prefix and Regex is set, as in a header
// match) into a match on the Cookie request header, for a data plane
// that matches headers but not cookies (Gateway API, Istio). The result
// has Name "Cookie" and a Regex that matches the whole header, so it
// means the same whether the data plane matches a regex against the whole
// value (Envoy) or anywhere in it:
//
//	^(.*;)? *NAME=(VALUE|"VALUE") *(;.*)?$
//
// NAME is the cookie's name, which must begin the header or follow a
// ';', so that canary never matches xcanary. VALUE is quoted with
// regexp.QuoteMeta for Value (canary=10 does not match 1), is followed by
// [^;]* for Prefix, and for Regex is the user's regex held inside the one
// cookie's value: it matches anywhere in the value, as in cutover's
// router, unless a leading ^ or a trailing $ (of the regex or of each of
// its top-level alternatives) anchors it at the value's start or end;
// its . and classes do not match ';', so it cannot reach into the next
// cookie. A regex with ^ or $ anywhere else, or with a ';' (which no
// cookie value holds), is refused. A value in double quotes matches
// without them, as in the router.
//
// Unlike the router, which reads the first cookie of that name only, the
// header matches when any cookie of that name matches.
func CookieMatch(c HeaderMatch) (HeaderMatch, error) {
	if err := c.Check(); err != nil {
		return HeaderMatch{}, fmt.Errorf("cookie route: %w", err)
	}
	var value string
	switch {
	case c.Value != "":
		value = regexp.QuoteMeta(c.Value)
	case c.Prefix != "":
		value = regexp.QuoteMeta(c.Prefix) + "[^;]*"
	default:
		var err error
		if value, err = withinCookie(c.Regex); err != nil {
			return HeaderMatch{}, fmt.Errorf("cookie route %s: regex %q: %w", c.Name, c.Regex, err)
		}
	}
	name := regexp.QuoteMeta(c.Name)
	return HeaderMatch{Name: "Cookie", Regex: `^(.*;)? *` + name + `=(` + value + `|"` + value + `") *(;.*)?$`}, nil
}

// withinCookie rewrites regex, which matches anywhere in a cookie's value
// unless anchored, into one that matches a whole value: each top-level
// alternative gets [^;]* before it unless it begins with ^ and after it
// unless it ends with $; the alternatives are grouped, so that the result
// can be quoted as a whole.
func withinCookie(regex string) (string, error) {
	re, err := syntax.Parse(regex, syntax.Perl)
	if err != nil {
		return "", err
	}
	branches := []*syntax.Regexp{re}
	if re.Op == syntax.OpAlternate {
		branches = re.Sub
	}
	var out []string
	for _, b := range branches {
		subs := []*syntax.Regexp{b}
		if b.Op == syntax.OpConcat {
			subs = b.Sub
		}
		start, end := "[^;]*", "[^;]*"
		if len(subs) > 0 && isAnchor(subs[0], syntax.OpBeginText, syntax.OpBeginLine) {
			start, subs = "", subs[1:]
		}
		if len(subs) > 0 && isAnchor(subs[len(subs)-1], syntax.OpEndText, syntax.OpEndLine) {
			end, subs = "", subs[:len(subs)-1]
		}
		body := &syntax.Regexp{Op: syntax.OpConcat, Sub: subs, Flags: b.Flags}
		if err := inValue(body); err != nil {
			return "", err
		}
		out = append(out, start+body.String()+end)
	}
	return "(" + strings.Join(out, "|") + ")", nil
}

func isAnchor(re *syntax.Regexp, ops ...syntax.Op) bool {
	for _, op := range ops {
		if re.Op == op {
			return true
		}
	}
	return false
}

// inValue keeps re within one cookie's value: . and character classes
// lose ';', and what it cannot keep there (an anchor inside it, a literal
// ';') is an error.
func inValue(re *syntax.Regexp) error {
	switch re.Op {
	case syntax.OpBeginText, syntax.OpBeginLine, syntax.OpEndText, syntax.OpEndLine:
		return fmt.Errorf("put ^ only at the beginning and $ only at the end (of the regex, or of an alternative of it): a cookie route matches within the cookie's value")
	case syntax.OpLiteral:
		if strings.ContainsRune(string(re.Rune), ';') {
			return fmt.Errorf("a cookie's value never holds ';'")
		}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		ranges := []rune{0, ';' - 1, ';' + 1, unicode.MaxRune}
		if re.Op == syntax.OpAnyCharNotNL {
			ranges = []rune{0, '\n' - 1, '\n' + 1, ';' - 1, ';' + 1, unicode.MaxRune}
		}
		re.Op, re.Rune = syntax.OpCharClass, ranges
	case syntax.OpCharClass:
		re.Rune = withoutSemicolon(re.Rune)
	}
	for _, sub := range re.Sub {
		if err := inValue(sub); err != nil {
			return err
		}
	}
	return nil
}

// withoutSemicolon removes ';' from a class's ranges (pairs lo, hi).
func withoutSemicolon(ranges []rune) []rune {
	var out []rune
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		if lo <= ';' && ';' <= hi {
			if lo < ';' {
				out = append(out, lo, ';'-1)
			}
			if hi > ';' {
				out = append(out, ';'+1, hi)
			}
			continue
		}
		out = append(out, lo, hi)
	}
	return out
}
