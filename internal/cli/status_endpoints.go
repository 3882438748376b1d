package cli

import (
	"fmt"

	"github.com/cutover/cutover/internal/controller"
)

// notReadyDetail says why each replica of s that is not ready is not, for
// the slot's line in `cutover status`.
func notReadyDetail(s controller.SlotStatus) string {
	out := ""
	for i, e := range s.Endpoints {
		if !e.Ready {
			out += fmt.Sprintf("; replica %d %s %s", i+1, e.URL, e.NotReady())
		}
	}
	return out
}
