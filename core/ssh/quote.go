package ssh

import "strings"

// ShellQuote joins argv into one POSIX shell command line that makes the
// remote shell see exactly argv. SSH carries a single command string that the
// guest's login shell parses, so every word is single-quoted unless it is made
// only of characters no shell treats specially; a single quote inside a word
// becomes '\” (close, escaped quote, reopen). An empty word becomes ”.
func ShellQuote(argv []string) string {
	var b strings.Builder
	for i, arg := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quoteWord(arg))
	}
	return b.String()
}

func quoteWord(s string) string {
	if s == "" {
		return "''"
	}
	if isSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isSafe reports whether s needs no quoting in any POSIX shell.
func isSafe(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-_./,:@%+=", r):
		default:
			return false
		}
	}
	return true
}
