package provider

import (
	"context"
	"errors"
	"io"
	"time"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
)

// consoleDrain is how long Console keeps copying output after in ends,
// so the answer to the last input line still reaches out.
var consoleDrain = 500 * time.Millisecond

// Console attaches to the VM's serial console through virDomainOpenConsole
// and a libvirt stream (so it works remotely, unlike a pty path), copying
// in to the guest and the guest to out until ctx ends or in reaches EOF.
func (p *Provider) Console(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, in io.Reader, out io.Writer) error {
	c, _, _, warns, err := p.connect(ctx)
	if err != nil {
		return err
	}
	dom := domainName(env.GetUuid(), vm.GetName())
	st, err := c.DomainState(dom)
	if err == nil && !isActive(st) {
		err = errors.New("the VM is not running")
	}
	if err != nil {
		return withWarnings(warns, errorDiag(vmLabel(env, vm)+": no console", err))
	}
	rw, err := c.OpenConsole(dom)
	if err != nil {
		return withWarnings(warns, errorDiag(vmLabel(env, vm)+": cannot open the console", err))
	}
	inDone := make(chan error, 1)
	outDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(rw, in)
		inDone <- err
	}()
	go func() {
		_, err := io.Copy(out, rw)
		outDone <- err
	}()
	var result error
	outFinished := false
	select {
	case <-ctx.Done():
	case err := <-inDone:
		result = err
		select {
		case <-time.After(consoleDrain):
		case <-outDone:
			outFinished = true
		case <-ctx.Done():
		}
	case err := <-outDone:
		// The guest side closed (VM stopped).
		outFinished = true
		if err != nil && !errors.Is(err, io.EOF) {
			result = err
		}
	}
	// Closing aborts the stream; the output copy blocked in it returns
	// then, and we wait for it so nothing writes to out after we return.
	closed := make(chan struct{})
	go func() { _ = rw.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
	}
	if !outFinished {
		select {
		case <-outDone:
		case <-time.After(2 * time.Second):
		}
	}
	if result != nil {
		return withWarnings(warns, errorDiag(vmLabel(env, vm)+": console failed", result))
	}
	return withWarnings(warns, nil)
}
