package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// notReadyReason is EndpointStatus.Reason for st.
func notReadyReason(st EndpointStatus, healthyThreshold int) string {
	switch {
	case st.Ready:
		return ""
	case st.EjectedUntil.After(time.Now()):
		return "ejected by passive health until " + st.EjectedUntil.Format("15:04:05")
	case st.LastCheck.IsZero():
		return "not checked yet"
	case st.LastError != "":
		return st.LastError
	}
	return fmt.Sprintf("passing, %d of %d check(s) in a row needed", st.Checks, healthyThreshold)
}

// checkFailure says briefly why a health check got no answer: without the
// URL, which the caller names, and without Go's wrapping.
func checkFailure(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within the health timeout %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return err.Error()
}

// NotReady describes an endpoint that is not ready for people, such as
// "not ready — GET /health: 503 Service Unavailable (3 checks)"; "" when it
// is ready.
func (s EndpointStatus) NotReady() string {
	if s.Ready {
		return ""
	}
	if s.Checks == 0 || s.LastError == "" {
		return "not ready — " + s.Reason
	}
	return fmt.Sprintf("not ready — %s (%d check%s)", s.Reason, s.Checks, plural(s.Checks))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
