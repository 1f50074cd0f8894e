package template

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Limits on what a template server can make lago wait for or store. A
// repository is someone else's server: without them a server that accepts
// a connection and never answers hangs init, and an endless body or an xz
// bomb fills the store.
const (
	// DefaultConnectTimeout bounds the TCP connect and the TLS handshake.
	DefaultConnectTimeout = 30 * time.Second
	// DefaultResponseTimeout bounds the wait for a response's headers once
	// the request is sent.
	DefaultResponseTimeout = time.Minute
	// DefaultMaxImageSize caps an image, compressed and decompressed: 64 GiB
	// is several times the largest disk template of the original's
	// repository, and still less than a store's disk is likely to hold.
	DefaultMaxImageSize int64 = 64 << 30

	// maxRepoSize bounds a repo.metadata: the original's public repository
	// is a few kB, and a large one with thousands of versions stays under
	// a MiB or two.
	maxRepoSize = 8 << 20
	// maxCompanionSize bounds a .hash or .metadata file.
	maxCompanionSize = 1 << 20
	// maxRedirects is net/http's own default, which a custom CheckRedirect
	// has to restate.
	maxRedirects = 10
)

// ErrTooLarge is wrapped by the error of a download bigger than its limit.
var ErrTooLarge = errors.New("larger than the limit")

// ErrDowngrade is wrapped by the error of a request that a server
// redirected from https to plain http: the response could then be altered
// on the way, and the hash that vouches for the image would come the same
// way.
var ErrDowngrade = errors.New("redirect from https to http refused")

// ErrRemoteFileSource is wrapped by the error of a repository loaded from
// a URL that asks for a template from a "file" source: whoever serves the
// repository must not make lago read this host's files into the store.
var ErrRemoteFileSource = errors.New("a repository loaded from a URL may only have http(s) sources")

// tooLarge says what exceeded which limit; the caller adds the template
// and URL.
func tooLarge(what string, limit int64) error {
	return fmt.Errorf("%s %w of %s (%d bytes; [init] template_max_image_size)", what, ErrTooLarge, size(limit), limit)
}

// NewClient returns the HTTP client of template downloads: proxies from the
// environment as net/http's default, connect and TLS handshake bounded by
// connect, response headers by response (0 means the defaults), and
// redirects from https to http refused. Bodies have no total timeout, so a
// slow but steady download of a large image is never cut: the stall
// watchdog of each read bounds them instead.
func NewClient(connect, response time.Duration) *http.Client {
	if connect <= 0 {
		connect = DefaultConnectTimeout
	}
	if response <= 0 {
		response = DefaultResponseTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = connect
	tr.ResponseHeaderTimeout = response
	return &http.Client{Transport: tr, CheckRedirect: refuseDowngrade(nil)}
}

// defaultClient serves a repository loaded without a client of its own.
var defaultClient = sync.OnceValue(func() *http.Client { return NewClient(0, 0) })

// refuseDowngrade wraps a CheckRedirect (nil: net/http's 10 redirects) so
// that no redirect leaves https once the chain was on it.
func refuseDowngrade(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		for _, prev := range via {
			if prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: %s to %s", ErrDowngrade, prev.URL.Redacted(), req.URL.Redacted())
			}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
}

// guarded returns client (the default one when nil) with the downgrade
// check added, so that a caller's own client cannot lose it.
func guarded(client *http.Client) *http.Client {
	if client == nil {
		return defaultClient()
	}
	c := *client
	c.CheckRedirect = refuseDowngrade(client.CheckRedirect)
	return &c
}

// httpGet returns a 2xx response; 404 and 410 wrap errNotFound.
func httpGet(ctx context.Context, client *http.Client, u string) (*http.Response, error) {
	c := guarded(client)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", redact(u), err)
	}
	resp, err := c.Do(req)
	if err != nil {
		// *url.Error repeats the method and URL; keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("get %s: %s%w", redact(u), timeoutHint(ctx, c, err), err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
		return nil, fmt.Errorf("get %s: %s: %w", redact(u), resp.Status, errNotFound)
	}
	return nil, fmt.Errorf("get %s: %s", redact(u), resp.Status)
}

// timeoutHint names the limit a timed-out request ran into ("" when it did
// not time out, ctx itself ended, or the client's transport is not one we
// can read).
func timeoutHint(ctx context.Context, c *http.Client, err error) string {
	var ne net.Error
	tr, ok := c.Transport.(*http.Transport)
	if !ok || ctx.Err() != nil || !errors.As(err, &ne) || !ne.Timeout() {
		return ""
	}
	var oe *net.OpError
	switch msg := err.Error(); {
	case errors.As(err, &oe) && oe.Op == "dial":
		return "no connection within the connect timeout ([init] template_connect_timeout): "
	case strings.Contains(msg, "TLS handshake"):
		return fmt.Sprintf("no TLS handshake within %s ([init] template_connect_timeout): ", tr.TLSHandshakeTimeout)
	case strings.Contains(msg, "awaiting response headers"):
		return fmt.Sprintf("no response within %s ([init] template_response_timeout): ", tr.ResponseHeaderTimeout)
	}
	return ""
}

// httpGetSmall reads a small document (repo.metadata, .hash, .metadata) of
// at most limit bytes. From the request on, a server that sends nothing
// for stall fails it, even behind a client without timeouts.
func httpGetSmall(ctx context.Context, client *http.Client, u string, limit int64, stall time.Duration) (data []byte, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c := &countingReader{progress: nopProgress{}}
	c.setFrom(redact(u))
	c.touch()
	go watchdog(ctx, cancel, c, stallOrDefault(stall))
	defer func() {
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrStalled) {
			err = cause
		}
	}()
	resp, err := httpGet(ctx, client, u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%s: %d bytes, %w of %d bytes for a metadata document", redact(u), resp.ContentLength, ErrTooLarge, limit)
	}
	c.r = resp.Body
	data, err = io.ReadAll(io.LimitReader(c, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", redact(u), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w of %d bytes for a metadata document", redact(u), ErrTooLarge, limit)
	}
	return data, nil
}

func stallOrDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultStallTimeout
	}
	return d
}

// redact hides a password in a URL before it goes into an error.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}
