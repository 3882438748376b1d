package config

import (
	"fmt"
	"regexp"
)

// versionLabel is the form of a version label: like an OCI image tag
// ([A-Za-z0-9_.-], at most 128) plus '+' for semver build metadata, and
// starting with a letter or digit. A label ends up in terminals (status,
// history), headers (X-Version), metric labels, file names and
// ${VERSION} in commands, so nothing that could break one of those is
// allowed: no spaces, newlines, escape codes, slashes or quotes.
var versionLabel = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$`)

// versionHint says what a version label may be.
const versionHint = "use 1 to 128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit, such as v2, 1.4.0-rc.1 or 2026.11.30+build.7"

// CheckVersion reports why v cannot be a version label, or nil. Its message
// quotes (a bounded prefix of) v and says what to write instead.
func CheckVersion(v string) error {
	if versionLabel.MatchString(v) {
		return nil
	}
	return fmt.Errorf("%s is not a version label; %s", Quote(v), versionHint)
}

// Quote quotes s for a message with Go escapes (so control characters and
// newlines cannot reach a terminal raw), cut after 64 bytes.
func Quote(s string) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:max], len(s))
}
