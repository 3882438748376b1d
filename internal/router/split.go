package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"regexp"
	"strings"
	"sync/atomic"
)

// Split divides an app's production traffic between its stable and canary
// backends. It must not be modified once passed to SetSplit.
//
// A request goes to Canary when any of Matches matches it; otherwise, with
// StickyCookie set, to the backend its cookie names; otherwise by Weight.
// While Canary has no ready endpoint and Stable has one, every request goes
// to Stable.
type Split struct {
	// Stable serves every request that does not go to Canary. A nil
	// Stable means the app has nothing ready: its requests get 503.
	Stable *Backend
	// Canary is the revision under test; nil sends everything to Stable.
	Canary *Backend
	// Weight is the percentage (0..100) of requests sent to Canary, exact
	// per request rather than approximated by replica counts: over any
	// 100 consecutive requests assigned by weight, exactly Weight go to
	// Canary, spread evenly.
	Weight int
	// Matches send a request to Canary whatever the weight when any of
	// them matches.
	Matches []Match
	// StickyCookie, when set, pins clients to a backend: a request
	// carrying that cookie with the Slot of Canary or Stable goes there,
	// and any other request is assigned by weight and answered with
	// Set-Cookie: NAME=<slot>; Path=/; HttpOnly; SameSite=Lax. A client
	// pinned to a slot that has left the split is assigned again.
	StickyCookie string
	// RetryOnStable retries on Stable, once, an idempotent request
	// (GET, HEAD, OPTIONS or TRACE without a body) that fails on Canary
	// with a connection error or a 5xx status, before anything is
	// written to the client. The failure still counts in Canary's
	// metrics. Other requests are never retried.
	RetryOnStable bool
	// Mirror, when set, copies a share of the requests Stable serves to
	// another backend and throws the answers away (see Mirror).
	Mirror *Mirror
}

// Match selects requests by one header or cookie. Exactly one of Header
// and Cookie names what to look at, and exactly one of Exact, Prefix and
// Regex says which values match. A request matches when any value of the
// header (or the cookie) does; a request without it does not match.
type Match struct {
	// Header is the name of a request header (case-insensitive).
	Header string
	// Cookie is the name of a request cookie.
	Cookie string
	// Exact matches a value equal to it.
	Exact string
	// Prefix matches a value starting with it.
	Prefix string
	// Regex matches a value it matches anywhere; anchor it with ^ and $
	// to match whole values.
	Regex *regexp.Regexp
}

// Validate reports every problem that would make SetSplit ignore the
// canary, each naming the field to fix.
func (s *Split) Validate() error {
	var errs []error
	if s.Stable == nil {
		if s.Canary != nil {
			errs = append(errs, errors.New("split has a canary but no stable backend; set Stable"))
		}
	} else if s.Stable.Pool == nil {
		errs = append(errs, fmt.Errorf("stable backend (slot %s) has no endpoint pool", s.Stable.Slot))
	}
	if s.Canary != nil && s.Canary.Pool == nil {
		errs = append(errs, fmt.Errorf("canary backend (slot %s) has no endpoint pool", s.Canary.Slot))
	}
	if s.Weight < 0 || s.Weight > 100 {
		errs = append(errs, fmt.Errorf("canary weight %d is outside 0..100", s.Weight))
	}
	for i, m := range s.Matches {
		if err := m.validate(); err != nil {
			errs = append(errs, fmt.Errorf("match %d: %w", i, err))
		}
	}
	if s.Mirror != nil {
		if err := s.Mirror.validate(); err != nil {
			errs = append(errs, fmt.Errorf("mirror: %w", err))
		}
	}
	if s.StickyCookie != "" {
		if (&http.Cookie{Name: s.StickyCookie}).Valid() != nil {
			errs = append(errs, fmt.Errorf("sticky cookie name %q is not a valid cookie name", s.StickyCookie))
		}
		if s.Stable != nil && s.Canary != nil {
			for _, b := range []*Backend{s.Stable, s.Canary} {
				if b.Slot == "" || (&http.Cookie{Name: s.StickyCookie, Value: b.Slot}).Valid() != nil {
					errs = append(errs, fmt.Errorf("slot name %q cannot be a sticky cookie value", b.Slot))
				}
			}
			if s.Stable.Slot == s.Canary.Slot {
				errs = append(errs, fmt.Errorf("stable and canary are both in slot %q, so a sticky cookie cannot tell them apart", s.Stable.Slot))
			}
		}
	}
	return errors.Join(errs...)
}

func (m Match) validate() error {
	if (m.Header == "") == (m.Cookie == "") {
		return fmt.Errorf("set exactly one of Header and Cookie (have header %q, cookie %q)", m.Header, m.Cookie)
	}
	n := 0
	for _, set := range []bool{m.Exact != "", m.Prefix != "", m.Regex != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%s: set exactly one of Exact, Prefix and Regex", m.what())
	}
	return nil
}

func (m Match) what() string {
	if m.Header != "" {
		return "header " + m.Header
	}
	return "cookie " + m.Cookie
}

// splitState is a published Split, resolved for the request path. It is
// shared by every snapshot published until the next SetSplit, so the
// weight counter runs on across unrelated snapshot swaps.
type splitState struct {
	stable, canary *Backend
	weight         evenShare
	matches        []matcher
	cookie         string // sticky cookie name; "" when not sticky
	setCanary      string // Set-Cookie values pinning to each backend
	setStable      string
	retry          bool
	// mirror copies some of stable's requests; nil when none are.
	mirror *mirrorState
}

// newSplitState resolves s. It returns nil when s has no usable stable
// backend.
func newSplitState(s *Split) *splitState {
	if s == nil || s.Stable == nil || s.Stable.Pool == nil {
		return nil
	}
	st := &splitState{stable: s.Stable}
	if s.Validate() != nil {
		return st
	}
	if s.Mirror != nil {
		st.mirror = newMirrorState(s.Mirror)
	}
	if s.Canary == nil {
		return st
	}
	st.canary = s.Canary
	st.weight.percent = uint64(s.Weight)
	st.retry = s.RetryOnStable
	st.matches = newMatchers(s.Matches)
	if s.StickyCookie != "" {
		st.cookie = s.StickyCookie
		st.setCanary = stickyCookie(s.StickyCookie, s.Canary.Slot)
		st.setStable = stickyCookie(s.StickyCookie, s.Stable.Slot)
	}
	return st
}

// newMatchers resolves ms for the request path.
func newMatchers(ms []Match) []matcher {
	var out []matcher
	for _, m := range ms {
		out = append(out, matcher{
			header: textproto.CanonicalMIMEHeaderKey(m.Header),
			cookie: m.Cookie,
			exact:  m.Exact,
			prefix: m.Prefix,
			regex:  m.Regex,
		})
	}
	return out
}

// matchesAny reports whether any of ms matches the header h.
func matchesAny(ms []matcher, h http.Header) bool {
	for i := range ms {
		if ms[i].matches(h) {
			return true
		}
	}
	return false
}

func stickyCookie(name, slot string) string {
	c := http.Cookie{Name: name, Value: slot, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	return c.String()
}

// choice is where one request goes.
type choice struct {
	backend *Backend
	canary  bool
	// setCookie is a Set-Cookie value to answer with, or "".
	setCookie string
}

// headerSource gives a split the request's header, which it needs only
// for matches and sticky cookies: the fast path builds one just then.
type headerSource interface {
	httpHeader() http.Header
}

// stdHeader is the header of a net/http request as a headerSource.
type stdHeader http.Header

func (h stdHeader) httpHeader() http.Header { return http.Header(h) }

// choose picks the backend of the request whose header hs gives. It does
// not allocate beyond what hs does.
func (s *splitState) choose(hs headerSource) choice {
	if s.canary == nil || s.canaryDown() {
		return choice{backend: s.stable}
	}
	toCanary := choice{backend: s.canary, canary: true}
	var h http.Header
	if len(s.matches) > 0 || s.cookie != "" {
		h = hs.httpHeader()
	}
	if matchesAny(s.matches, h) {
		return toCanary
	}
	if s.cookie == "" {
		if s.weight.next() {
			return toCanary
		}
		return choice{backend: s.stable}
	}
	if v, ok := cookieValue(h, s.cookie); ok {
		switch v {
		case s.canary.Slot:
			return toCanary
		case s.stable.Slot:
			return choice{backend: s.stable}
		}
	}
	if s.weight.next() {
		toCanary.setCookie = s.setCanary
		return toCanary
	}
	return choice{backend: s.stable, setCookie: s.setStable}
}

// canaryDown reports whether the canary has no ready endpoint while
// stable has one: then its whole share, matches and sticky clients
// included, goes to stable rather than to a 503. Two atomic loads.
func (s *splitState) canaryDown() bool {
	return s.canary.Pool.ReadyCount() == 0 && s.stable.Pool.ReadyCount() > 0
}

// evenShare picks an exact percentage of turns, spread evenly.
type evenShare struct {
	percent uint64 // 0..100
	// turns counts the turns taken so far.
	turns atomic.Uint64
}

// next takes the next turn and reports whether it is picked: turn n is
// when floor((n+1)·P/100) > floor(n·P/100), which picks exactly P of
// every 100 consecutive turns, evenly spaced.
func (e *evenShare) next() bool {
	switch e.percent {
	case 0:
		return false
	case 100:
		return true
	}
	n := (e.turns.Add(1) - 1) % 100
	return (n+1)*e.percent/100 > n*e.percent/100
}

// matcher is a validated Match with its header name canonicalized.
type matcher struct {
	header, cookie string
	exact, prefix  string
	regex          *regexp.Regexp
}

func (m *matcher) matches(h http.Header) bool {
	if m.header != "" {
		for _, v := range h[m.header] {
			if m.matchesValue(v) {
				return true
			}
		}
		return false
	}
	v, ok := cookieValue(h, m.cookie)
	return ok && m.matchesValue(v)
}

func (m *matcher) matchesValue(v string) bool {
	switch {
	case m.exact != "":
		return v == m.exact
	case m.prefix != "":
		return strings.HasPrefix(v, m.prefix)
	default:
		return m.regex.MatchString(v)
	}
}

// cookieValue returns the value of the first cookie called name in h's
// Cookie headers, without surrounding quotes. Unlike Request.Cookie it
// does not allocate.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// retryable reports whether req may be sent twice: an idempotent method
// and no body.
func retryable(req *http.Request) bool {
	return safeMethod(req.Method) && req.ContentLength == 0 && (req.Body == nil || req.Body == http.NoBody)
}

// safeMethod reports whether a request with this method may be sent to a
// canary and then again to stable: it has no effect on the server.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
