package analysis

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/config"
)

// Resolve finds the templates ref names in all, in ref's order, and merges
// their arguments: template defaults yield to args (the controller's), which
// yield to ref.Args. When two templates give the same argument different
// defaults, the first template's wins. The error names a missing template
// or a required argument nobody gave a value.
func Resolve(all []config.AnalysisTemplate, ref config.AnalysisRef, args map[string]string) ([]config.AnalysisTemplate, map[string]string, error) {
	byName := make(map[string]config.AnalysisTemplate, len(all))
	for _, t := range all {
		byName[t.Name] = t
	}
	templates := make([]config.AnalysisTemplate, 0, len(ref.Templates))
	for _, name := range ref.Templates {
		t, ok := byName[name]
		if !ok {
			return nil, nil, fmt.Errorf("analysis template %q not found (known: %s); define it under analysisTemplates or fix the name",
				name, strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
		}
		templates = append(templates, t)
	}

	merged := make(map[string]string)
	for _, t := range templates {
		for _, a := range t.Args {
			if _, seen := merged[a.Name]; !seen && a.Value != nil {
				merged[a.Name] = *a.Value
			}
		}
	}
	maps.Copy(merged, args)
	maps.Copy(merged, ref.Args)
	for _, t := range templates {
		for _, a := range t.Args {
			if _, ok := merged[a.Name]; !ok {
				return nil, nil, fmt.Errorf("analysis template %q needs arg %q: give it a value under args where the template is used, or a default in the template",
					t.Name, a.Name)
			}
		}
	}
	return templates, merged, nil
}

// argRef matches {{args.NAME}}, with optional spaces inside the braces.
var argRef = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}`)

// expandArgs replaces every {{args.NAME}} in s by its value; an argument
// without a value is an error, since a query with a hole measures nothing.
func expandArgs(s string, args map[string]string) (string, error) {
	var missing []string
	out := argRef.ReplaceAllStringFunc(s, func(m string) string {
		name := argRef.FindStringSubmatch(m)[1]
		v, ok := args[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%q refers to args %s, which have no value: declare them in the template's args or pass them where the template is used",
			s, strings.Join(missing, ", "))
	}
	return out, nil
}
