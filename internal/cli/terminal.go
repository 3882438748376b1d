package cli

import (
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// terminalWriter writes to a terminal (or a pipe) with every control
// character but newline and tab escaped as \uXXXX: text that came from
// elsewhere (file names, messages the server recorded, output of hooks)
// cannot move the cursor, clear the screen or retitle the window. The
// escape is JSON's own, so --output json stays valid and equivalent
// (encoding/json already escapes C0 controls; DEL and C1 it leaves raw).
type terminalWriter struct{ w io.Writer }

func (t terminalWriter) Write(p []byte) (int, error) {
	clean := true
	for i := 0; i < len(p) && clean; {
		r, size := utf8.DecodeRune(p[i:])
		clean = !needsEscape(r, size)
		i += size
	}
	if clean {
		return t.w.Write(p)
	}
	out := make([]byte, 0, len(p)+16)
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if needsEscape(r, size) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, p[i:i+size]...)
		}
		i += size
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// needsEscape reports a control character a terminal would act on; an
// invalid byte (size 1, RuneError) is passed on as it is.
func needsEscape(r rune, size int) bool {
	if r == utf8.RuneError && size <= 1 {
		return false
	}
	return unicode.IsControl(r) && r != '\n' && r != '\t'
}
