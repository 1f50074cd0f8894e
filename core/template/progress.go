package template

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Progress hears about a download. Advance gets the running total of bytes
// read from the source and may be called very often; implementations
// throttle their own output.
type Progress interface {
	Begin(what string, total int64) // total < 0 when unknown
	Advance(done int64)
	End(err error)
}

type nopProgress struct{}

func (nopProgress) Begin(string, int64) {}
func (nopProgress) Advance(int64)       {}
func (nopProgress) End(error)           {}

// NewProgress returns a bar redrawn in place on w when w is a terminal, and
// otherwise a line through logf every interval (logf nil writes lines to w).
func NewProgress(w *os.File, logf func(format string, args ...any), interval time.Duration) Progress {
	if w != nil && term.IsTerminal(int(w.Fd())) {
		return &barProgress{w: w, every: 100 * time.Millisecond, now: time.Now}
	}
	if logf == nil {
		out := io.Writer(io.Discard)
		if w != nil {
			out = w
		}
		logf = func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	}
	if interval <= 0 {
		interval = 10 * time.Second
	}
	return &logProgress{logf: logf, every: interval, now: time.Now}
}

// barProgress draws "\r<what> [=====>    ]  45% 120.3 MiB/267.0 MiB 85.2 MiB/s".
type barProgress struct {
	w     io.Writer
	every time.Duration
	now   func() time.Time

	mu          sync.Mutex
	what        string
	total, done int64
	start, last time.Time
}

func (b *barProgress) Begin(what string, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.what, b.total, b.done = what, total, 0
	b.start = b.now()
	b.last = time.Time{}
	b.draw()
}

func (b *barProgress) Advance(done int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	if t := b.now(); t.Sub(b.last) >= b.every {
		b.last = t
		b.draw()
	}
}

func (b *barProgress) End(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw()
	if err != nil {
		fmt.Fprintf(b.w, " failed\n")
		return
	}
	fmt.Fprintf(b.w, " done\n")
}

func (b *barProgress) draw() {
	const width = 30
	rate := rateOf(b.done, b.now().Sub(b.start))
	if b.total > 0 {
		frac := float64(b.done) / float64(b.total)
		frac = min(max(frac, 0), 1)
		fill := int(frac * width)
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		if fill > 0 && fill < width {
			bar = strings.Repeat("=", fill-1) + ">" + strings.Repeat(" ", width-fill)
		}
		fmt.Fprintf(b.w, "\r%s [%s] %3.0f%% %s/%s %s/s\x1b[K", b.what, bar, frac*100, size(b.done), size(b.total), size(int64(rate)))
		return
	}
	fmt.Fprintf(b.w, "\r%s %s %s/s\x1b[K", b.what, size(b.done), size(int64(rate)))
}

// logProgress writes a line now and then, for logs and pipes.
type logProgress struct {
	logf  func(format string, args ...any)
	every time.Duration
	now   func() time.Time

	mu          sync.Mutex
	what        string
	total, done int64
	start, last time.Time
}

func (l *logProgress) Begin(what string, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.what, l.total, l.done = what, total, 0
	l.start = l.now()
	l.last = l.start
	if total >= 0 {
		l.logf("downloading %s (%s)", what, size(total))
	} else {
		l.logf("downloading %s", what)
	}
}

func (l *logProgress) Advance(done int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = done
	t := l.now()
	if t.Sub(l.last) < l.every {
		return
	}
	l.last = t
	rate := size(int64(rateOf(done, t.Sub(l.start))))
	if l.total > 0 {
		l.logf("downloading %s: %.0f%% (%s of %s, %s/s)", l.what, 100*float64(done)/float64(l.total), size(done), size(l.total), rate)
		return
	}
	l.logf("downloading %s: %s (%s/s)", l.what, size(done), rate)
}

func (l *logProgress) End(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.now().Sub(l.start)
	if err != nil {
		l.logf("downloading %s failed after %s: %v", l.what, d.Round(time.Millisecond), err)
		return
	}
	l.logf("downloaded %s: %s in %s (%s/s)", l.what, size(l.done), d.Round(time.Millisecond), size(int64(rateOf(l.done, d))))
}

func rateOf(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
