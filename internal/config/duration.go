package config

import (
	"fmt"
	"time"

	"github.com/goccy/go-yaml"
)

// durationHint is what to write instead of a malformed duration.
const durationHint = "write a Go duration such as 1s or 500ms"

// UnmarshalYAML reads a Go duration string such as "30s". A plain number is
// rejected because its unit would be a guess.
func (d *Duration) UnmarshalYAML(data []byte) error {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("read duration: %w", err)
	}
	parsed, err := durationFromValue(v)
	if err != nil {
		return err
	}
	*d = parsed
	return nil
}

// UnmarshalText reads a Go duration string such as "30s".
func (d *Duration) UnmarshalText(text []byte) error {
	parsed, err := durationFromValue(string(text))
	if err != nil {
		return err
	}
	*d = parsed
	return nil
}

// MarshalText writes d as a Go duration string, so a marshalled Config
// parses back to the same value.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// String returns d as a Go duration string such as "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// durationFromValue converts a decoded YAML scalar into a Duration. Its
// errors are fieldErrors so the schema check can split message and hint.
func durationFromValue(v any) (Duration, error) {
	switch v := v.(type) {
	case nil:
		return 0, nil
	case string:
		parsed, err := time.ParseDuration(v)
		if err != nil {
			return 0, fieldError{msg: fmt.Sprintf("%q is not a duration", v), hint: durationHint}
		}
		return Duration(parsed), nil
	case uint64, int64, float64:
		return 0, fieldError{
			msg:  fmt.Sprintf("%v is a plain number, not a duration", v),
			hint: fmt.Sprintf("add a unit: write \"%vs\" for seconds or \"%vms\" for milliseconds", v, v),
		}
	default:
		return 0, fieldError{msg: fmt.Sprintf("%v is not a duration", v), hint: durationHint}
	}
}

// fieldError is a problem with one value, without its position.
type fieldError struct {
	msg, hint string
}

func (e fieldError) Error() string {
	if e.hint == "" {
		return e.msg
	}
	return e.msg + "; " + e.hint
}
