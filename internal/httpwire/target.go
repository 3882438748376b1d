package httpwire

// ValidHost reports whether h is a Host header value cutover passes on: a
// DNS name or IPv4 address (letters, digits, '-', '.', '_', '~') or an
// IPv6 literal in brackets, with an optional ":port". RFC 3986 also allows
// percent escapes and sub-delimiters (',', ';', '=', ...) in a reg-name;
// no real host has them, and they would break the lists of
// X-Forwarded-Host and Forwarded the value is copied into, so they are
// refused. An empty value is valid (RFC 9112 section 3.2).
func ValidHost[T string | []byte](h T) bool {
	i := 0
	if len(h) > 0 && h[0] == '[' {
		for i = 1; i < len(h) && h[i] != ']'; i++ {
			if c := h[i]; c != ':' && c != '.' && !isHex(c) {
				return false
			}
		}
		if i == len(h) || i == 1 {
			return false
		}
		i++
	} else {
		for ; i < len(h) && h[i] != ':'; i++ {
			if !hostChars[h[i]] {
				return false
			}
		}
	}
	if i == len(h) {
		return true
	}
	if h[i] != ':' || len(h)-i-1 > 5 {
		return false
	}
	for i++; i < len(h); i++ {
		if h[i] < '0' || h[i] > '9' {
			return false
		}
	}
	return true
}

// hostChars marks the bytes ValidHost takes in a host name.
var hostChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = tokenChars[c] && (c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '.' || c == '_' || c == '~')
	}
	return t
}()

func isHex(c byte) bool {
	_, ok := hexValue(c)
	return ok
}

// HasDotSegment reports whether the request target's path (up to '?')
// has a "." or ".." segment, also with the dots percent-encoded (%2e) and
// with segments separated by '\' or an encoded slash (%2f, %5c), as some
// backends decode them. Routing by such a path and the backend resolving
// it could pick different resources (/public/../admin), so cutover
// refuses these requests rather than guess which one the client meant.
func HasDotSegment[T string | []byte](target T) bool {
	dots := 0 // dots in the current segment; -1 once it has another byte
	for i := 0; i < len(target); i++ {
		c := target[i]
		switch {
		case c == '?':
			return dots > 0
		case c == '/' || c == '\\':
			if dots > 0 {
				return true
			}
			dots = 0
		case c == '%' && i+2 < len(target):
			switch escaped(target[i+1], target[i+2]) {
			case '.':
				if dots >= 0 {
					dots++
				}
			case '/':
				if dots > 0 {
					return true
				}
				dots = 0
			default:
				dots = -1
			}
			i += 2
		case c == '.':
			if dots >= 0 {
				dots++
			}
		default:
			dots = -1
		}
		if dots > 2 {
			dots = -1 // "..." is a name
		}
	}
	return dots > 0
}

// escaped returns the byte of the percent escape %ab when it is one
// HasDotSegment looks at ('.', or '/' for both kinds of slash), else 0.
func escaped(a, b byte) byte {
	if a != '2' && a != '5' {
		return 0
	}
	switch b | 0x20 {
	case 'e':
		if a == '2' {
			return '.'
		}
	case 'f':
		if a == '2' {
			return '/'
		}
	case 'c':
		if a == '5' {
			return '/'
		}
	}
	return 0
}
