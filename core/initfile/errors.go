package initfile

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in an init file. It names the file, the
// position of the offending value (1-based line and column; 0 when
// unknown), the field path such as domains.vm0.nics[1].net, and says what
// is allowed.
type Error struct {
	File   string
	Line   int
	Column int
	// Path is the field path; empty for problems of the whole file.
	Path string
	Msg  string
	// Err is the error Msg comes from, for errors.Is, when there is one.
	Err error
}

// Unwrap returns the error e was made from, if any.
func (e *Error) Unwrap() error { return e.Err }

// Error formats e as file:line:column: path: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem of one init file, sorted by position. It is
// returned as an error so that a user fixes them all in one go.
type ErrorList []*Error

// Error prints one problem a line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find a single *Error of the list.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Path < b.Path
	})
}

// suggest returns the candidate closest to word when it is close enough
// to be a likely typo, else "".
func suggest(word string, candidates []string) string {
	best, bestD := "", -1
	lw := strings.ToLower(word)
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := editDistance(lw, lc)
		limit := max(len(c)/3, 1)
		close := d <= limit ||
			(len(lw) >= 3 && (strings.HasPrefix(lc, lw) || strings.HasPrefix(lw, lc))) ||
			strings.ReplaceAll(lw, "-", "_") == strings.ReplaceAll(lc, "-", "_")
		if !close {
			continue
		}
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance of a and b
// (Levenshtein plus swaps of adjacent bytes, the commonest typo). Inputs are
// capped so that a hostile key cannot make validation slow.
func editDistance(a, b string) int {
	const maxLen = 64
	if len(a) > maxLen {
		a = a[:maxLen]
	}
	if len(b) > maxLen {
		b = b[:maxLen]
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
