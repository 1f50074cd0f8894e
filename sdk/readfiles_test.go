package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
)

// filesProvider implements the optional FileReader: it sends a stream
// bigger than one message, reports a missing path, or fails after part
// of the stream.
type filesProvider struct{ UnimplementedProvider }

func (filesProvider) ReadFiles(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, paths []string, maxBytes int64, w io.Writer) ([]string, error) {
	body := bytes.Repeat([]byte(vm.GetName()), (3*readFilesChunk)/len(vm.GetName())+7)
	if _, err := w.Write(body); err != nil {
		return nil, err
	}
	if vm.GetName() == "broken" {
		return nil, errors.New("disk unreadable")
	}
	var missing []string
	for _, p := range paths {
		if strings.Contains(p, "nope") {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

func TestProviderReadFiles(t *testing.T) {
	p := &Plugin{Name: "files", Components: []Component{
		{Info: ComponentInfo{Name: "with", Kind: KindProvider}, Impl: filesProvider{}},
		{Info: ComponentInfo{Name: "without", Kind: KindProvider}, Impl: fakeProvider{}},
	}}
	c := dial(t, p)
	for _, tc := range []struct {
		component, vm string
		paths         []string
		missing       []string
		err           error
		errText       string
	}{
		{component: "with", vm: "vm0", paths: []string{"/a", "/nope", "/b/nope2"}, missing: []string{"/nope", "/b/nope2"}},
		{component: "with", vm: "vm1", paths: []string{"/a"}},
		{component: "with", vm: "broken", paths: []string{"/a"}, errText: "disk unreadable"},
		{component: "without", vm: "vm0", paths: []string{"/a"}, err: ErrNotImplemented},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.component, tc.vm), func(t *testing.T) {
			fr, ok := c.Provider(tc.component).(FileReader)
			if !ok {
				t.Fatal("the provider client does not offer ReadFiles")
			}
			var out bytes.Buffer
			missing, err := fr.ReadFiles(context.Background(), &providerv1.EnvRef{}, &providerv1.VM{Name: tc.vm}, tc.paths, 0, &out)
			switch {
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("ReadFiles err = %v, want %v", err, tc.err)
				}
				return
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("ReadFiles err = %v, want %q", err, tc.errText)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			want := bytes.Repeat([]byte(tc.vm), (3*readFilesChunk)/len(tc.vm)+7)
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("ReadFiles wrote %d bytes, want %d", out.Len(), len(want))
			}
			if fmt.Sprint(missing) != fmt.Sprint(tc.missing) {
				t.Fatalf("missing = %v, want %v", missing, tc.missing)
			}
		})
	}
}

// TestProviderReadFilesWriteError: a failed write on the core's side
// ends the call with that error.
func TestProviderReadFilesWriteError(t *testing.T) {
	c := dial(t, &Plugin{Name: "files", Components: []Component{
		{Info: ComponentInfo{Name: "with", Kind: KindProvider}, Impl: filesProvider{}}}})
	boom := errors.New("disk full")
	_, err := c.Provider("with").(FileReader).ReadFiles(context.Background(), &providerv1.EnvRef{}, &providerv1.VM{Name: "vm0"}, []string{"/a"}, 0, failWriter{boom})
	if !errors.Is(err, boom) {
		t.Fatalf("ReadFiles err = %v, want %v", err, boom)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
