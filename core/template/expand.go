package template

import (
	"os/user"
	"strings"
)

// expandPath expands p as the original Lago did file roots and handles,
// with Python's os.path.expanduser(os.path.expandvars(p)): $NAME and
// ${NAME} take the variable's value, then a leading ~ or ~user becomes that
// home folder. Unknown variables and users stay as written, so a repository
// file written for the original finds the same files. The result is a
// path: nothing runs a shell on it.
func expandPath(p string, lookup func(string) (string, bool)) string {
	return expandUser(expandVars(p, lookup), lookup)
}

// expandVars is posixpath.expandvars: "$" then a run of ASCII letters,
// digits and '_', or "${...}".
func expandVars(p string, lookup func(string) (string, bool)) string {
	if !strings.Contains(p, "$") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); {
		if p[i] != '$' {
			b.WriteByte(p[i])
			i++
			continue
		}
		// A lone "$", or "${" without "}", stays as it is.
		name, end := "", i+1
		if end < len(p) && p[end] == '{' {
			if j := strings.IndexByte(p[end+1:], '}'); j >= 0 {
				name, end = p[end+1:end+1+j], end+1+j+1
			}
		} else {
			for end < len(p) && isWordByte(p[end]) {
				end++
			}
			name = p[i+1 : end]
		}
		if v, ok := lookup(name); ok && name != "" {
			b.WriteString(v)
		} else {
			b.WriteString(p[i:end])
		}
		i = end
	}
	return b.String()
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// expandUser is posixpath.expanduser: "~" is $HOME (or the current user's
// home), "~name" that user's home; the rest of the path is kept.
func expandUser(p string, lookup func(string) (string, bool)) string {
	if !strings.HasPrefix(p, "~") {
		return p
	}
	i := strings.IndexByte(p, '/')
	if i < 0 {
		i = len(p)
	}
	var home string
	if i == 1 {
		if h, ok := lookup("HOME"); ok {
			home = h
		} else if u, err := user.Current(); err == nil {
			home = u.HomeDir
		} else {
			return p
		}
	} else {
		u, err := user.Lookup(p[1:i])
		if err != nil {
			return p
		}
		home = u.HomeDir
	}
	if out := strings.TrimRight(home, "/") + p[i:]; out != "" {
		return out
	}
	return "/"
}
