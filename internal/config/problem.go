package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a config file, located like a compiler
// error so editors can jump to it.
type Problem struct {
	// File is the config file's name as given to Load or Parse.
	File string
	// Line and Column are 1-based and point at the offending value, or at
	// the enclosing field when the value is missing. They are 0 for a
	// source without lines to point at, such as a declared app's entry in
	// an object (see Config.WithApp).
	Line, Column int
	// Message says what is wrong; it starts with the field's path, such as
	// "apps[1].health.interval".
	Message string
	// Hint says what to write instead; empty when there is nothing to add.
	Hint string
}

// String formats p as "FILE:LINE:COL: MESSAGE; HINT" (without "; HINT" when
// there is no hint, and "FILE: MESSAGE" without a line).
func (p Problem) String() string {
	s := fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Message)
	if p.Line == 0 {
		s = p.File + ": " + p.Message
	}
	if p.Hint != "" {
		s += "; " + p.Hint
	}
	return s
}

// Problems is the error Load and Parse return when a config is invalid. It
// holds every problem found, sorted by position.
type Problems []Problem

// Error lists the problems one per line, in the format of Problem.String.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortByPosition orders ps by line then column, keeping the order in which
// problems were found for those at the same position.
func (ps Problems) sortByPosition() {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
}
