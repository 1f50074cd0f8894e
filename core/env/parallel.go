package env

import (
	"context"
	"errors"
	"sync"

	"github.com/lago-go/lago/sdk"
)

// providerHandle wraps a resolved provider.
type providerHandle struct{ sdk.Provider }

// parallel runs fn for i in [0,n) with at most limit running at once (0 or
// less means no limit) and returns every failure joined. It does not stop
// on the first failure: callers roll back what succeeded, so they need all
// the calls to have finished.
func parallel(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	if limit <= 0 || limit > n {
		limit = n
	}
	sem := make(chan struct{}, limit)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			for j := i; j < n; j++ {
				errs[j] = ctx.Err()
			}
			wg.Wait()
			return errors.Join(dedupCtx(errs)...)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(ctx, i)
		}(i)
	}
	wg.Wait()
	return errors.Join(dedupCtx(errs)...)
}

// dedupCtx keeps one bare context error, so a cancelled run of many calls
// reports "context canceled" once rather than once per call.
func dedupCtx(errs []error) []error {
	var out []error
	sawCtx := false
	for _, err := range errs {
		if err == nil {
			continue
		}
		if err == context.Canceled || err == context.DeadlineExceeded {
			if sawCtx {
				continue
			}
			sawCtx = true
		}
		out = append(out, err)
	}
	return out
}
