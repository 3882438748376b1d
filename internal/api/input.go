package api

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/imageref"
)

// checkDeploy refuses a deploy whose text would break what shows or uses
// it: a version label outside config.CheckVersion's charset (newlines forge
// lines in history, escape codes reach terminals, X-Version breaks), a
// command word with a control character, or an upstream that is not an
// absolute http(s) URL. Nothing is recorded for a refused deploy.
func checkDeploy(req controller.DeployRequest) error {
	if err := config.CheckVersion(req.Version); err != nil {
		return fmt.Errorf("version %w", err)
	}
	for i, w := range req.Command {
		if strings.ContainsFunc(w, unicode.IsControl) {
			return fmt.Errorf("command word %d %s has a control character; write the command on one line, without escape codes", i+1, config.Quote(w))
		}
	}
	if req.Image != "" {
		if _, err := imageref.Parse(req.Image); err != nil {
			return err
		}
	}
	for _, raw := range req.Upstreams {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("upstream %s is not an absolute http(s) URL; write it like http://10.0.0.5:8080", config.Quote(raw))
		}
	}
	return nil
}
