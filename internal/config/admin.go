package config

import "unicode"

// minTokenLength is the shortest admin token accepted: 16 random characters
// (64 bits as hex) are beyond guessing through an HTTP API.
const minTokenLength = 16

// tokenHint says how to make a good token.
const tokenHint = "use at least 16 random characters, such as the output of `openssl rand -hex 16`"

// validateToken checks a configured token. Messages never repeat it: they
// end up in logs.
func (a *Admin) validateToken(d *document) {
	if a.Token == "" {
		return
	}
	for _, r := range a.Token {
		if r > unicode.MaxASCII || !unicode.IsGraphic(r) || unicode.IsSpace(r) {
			d.add("admin.token", tokenHint, "has a space or a control character, which an Authorization header cannot carry")
			return
		}
	}
	if n := len(a.Token); n < minTokenLength {
		d.add("admin.token", tokenHint, "%d characters are too short to keep a guesser out", n)
	}
}
