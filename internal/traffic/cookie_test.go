package traffic

import (
	"regexp"
	"strings"
	"testing"
)

// cookieHeader compiles the Cookie header regex CookieMatch makes of m,
// with Go's regexp: RE2, Envoy's dialect.
func cookieHeader(t *testing.T, m HeaderMatch) *regexp.Regexp {
	t.Helper()
	h, err := CookieMatch(m)
	if err != nil {
		t.Fatalf("CookieMatch(%+v): %v", m, err)
	}
	if h.Name != "Cookie" || h.Value != "" || h.Prefix != "" {
		t.Fatalf("CookieMatch(%+v) = %+v, want a regex on the Cookie header", m, h)
	}
	re, err := regexp.Compile(h.Regex)
	if err != nil {
		t.Fatalf("CookieMatch(%+v) regex %q does not compile: %v", m, h.Regex, err)
	}
	return re
}

func TestCookieMatchMatchesTheNamedCookieOnlyAndItsWholeValue(t *testing.T) {
	exact := HeaderMatch{Name: "canary", Value: "1"}
	prefix := HeaderMatch{Name: "canary", Prefix: "be.ta"}
	anywhere := HeaderMatch{Name: "canary", Regex: "et"}
	anchored := HeaderMatch{Name: "canary", Regex: "^(beta|internal)$"}
	either := HeaderMatch{Name: "canary", Regex: "^beta|internal$"}
	dotted := HeaderMatch{Name: "canary", Regex: "^a.*b$"}
	oddName := HeaderMatch{Name: "my.canary+1", Value: "a+b"}
	for _, c := range []struct {
		m      HeaderMatch
		header string
		want   bool
	}{
		{exact, "canary=1", true},
		{exact, "canary=1; session=abc", true},
		{exact, "session=abc; canary=1", true},
		{exact, "a=b; canary=1; c=d", true},
		{exact, "a=b;canary=1;c=d", true},
		{exact, "a=b;   canary=1  ; c=d", true},
		{exact, `canary="1"`, true},
		{exact, "xcanary=1", false},
		{exact, "a=b; xcanary=1", false},
		{exact, "canaryx=1", false},
		{exact, "canary=10", false},
		{exact, "canary=01", false},
		{exact, "canary= 1", false},
		{exact, "canary=", false},
		{exact, "canary", false},
		{exact, `canary="1`, false},
		{exact, "session=canary=1", false},
		{exact, "session=x canary=1", false},
		{exact, "Canary=1", false},
		{exact, "", false},
		{exact, "xcanary=1; canary=2", false},
		{exact, "xcanary=2; canary=1", true},
		{prefix, "canary=be.ta", true},
		{prefix, "canary=be.ta-7; a=b", true},
		{prefix, `canary="be.ta-7"`, true},
		{prefix, "canary=beXta", false},
		{prefix, "canary=xbe.ta", false},
		{prefix, "canary=be; a=.ta", false},
		{prefix, "xcanary=be.ta", false},
		{anywhere, "canary=beta", true},
		{anywhere, "canary=et", true},
		{anywhere, `a=1; canary="et"`, true},
		{anywhere, "canary=e; t=1", false},
		{anywhere, "canary=x; other=et", false},
		{anchored, "canary=beta", true},
		{anchored, "a=b; canary=internal; c=d", true},
		{anchored, `canary="beta"`, true},
		{anchored, "canary=betamax", false},
		{anchored, "canary=xbeta", false},
		{anchored, "canary=internal2; x=beta", false},
		{either, "canary=betamax", true},
		{either, "canary=all-internal", true},
		{either, "canary=xbeta", false},
		{either, "canary=internals", false},
		{dotted, "canary=a-b", true},
		{dotted, "canary=a; x=b", false},
		{oddName, "my.canary+1=a+b", true},
		{oddName, "myxcanary+1=a+b", false},
		{oddName, "my.canary+1=aab", false},
	} {
		re := cookieHeader(t, c.m)
		if got := re.MatchString(c.header); got != c.want {
			t.Errorf("%+v on Cookie: %s: matched %v, want %v (regex %s)", c.m, c.header, got, c.want, re)
		}
		// Envoy matches the whole value; being anchored, the regex means
		// the same there.
		whole := regexp.MustCompile("^(?:" + re.String() + ")$")
		if got := whole.MatchString(c.header); got != c.want {
			t.Errorf("%+v on Cookie: %s as a whole-value match: matched %v, want %v", c.m, c.header, got, c.want)
		}
	}
}

func TestCookieMatchRefusesWhatCannotStayWithinOneCookie(t *testing.T) {
	for _, c := range []struct {
		m    HeaderMatch
		want string
	}{
		{HeaderMatch{Name: "canary", Regex: "a(^b)"}, "put ^ only at the beginning"},
		{HeaderMatch{Name: "canary", Regex: "(a$)b"}, "put ^ only at the beginning"},
		{HeaderMatch{Name: "canary", Regex: "1;x=2"}, "never holds ';'"},
		{HeaderMatch{Name: "canary", Regex: "a("}, "missing closing )"},
		{HeaderMatch{Name: "canary"}, "give a value, prefix or regex"},
		{HeaderMatch{Value: "1"}, "needs the header's name"},
	} {
		_, err := CookieMatch(c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CookieMatch(%+v) = %v, want an error saying %q", c.m, err, c.want)
		}
	}
}
