package provider

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
)

// fakeFish plays guestfish over a host folder standing in for the
// guest's root: it runs the argv's commands one by one as guestfish does
// (a "-" command's failure is ignored), with realpath and statns resolved
// inside the folder, and a download of a FIFO blocking as in the
// appliance.
type fakeFish struct {
	root string
	// failStarts is how many runs fail to launch first.
	failStarts int
	startErr   string

	mu    sync.Mutex
	runs  int
	argvs [][]string
	env   []string
}

func (f *fakeFish) run(ctx context.Context, argv, env []string, stdout io.Writer) ([]byte, error) {
	f.mu.Lock()
	f.runs++
	f.argvs = append(f.argvs, argv)
	f.env = env
	fail := f.runs <= f.failStarts
	f.mu.Unlock()
	if fail {
		return []byte(f.startErr), errors.New("exit status 1")
	}
	var cmds [][]string
	for i, a := range argv {
		if a == "--" {
			var cur []string
			for _, w := range argv[i+1:] {
				if w == ":" {
					cmds = append(cmds, cur)
					cur = nil
					continue
				}
				cur = append(cur, w)
			}
			cmds = append(cmds, cur)
		}
	}
	var stderr bytes.Buffer
	for _, c := range cmds {
		name, ignore := strings.CutPrefix(c[0], "-")
		if err := f.cmd(ctx, name, c[1:], stdout); err != nil {
			fmt.Fprintf(&stderr, "libguestfs: error: %s: %v\n", name, err)
			if ctx.Err() != nil {
				return stderr.Bytes(), ctx.Err()
			}
			if !ignore {
				return stderr.Bytes(), errors.New("exit status 1")
			}
		}
	}
	return stderr.Bytes(), nil
}

// resolve follows symbolic links inside root, as a chroot would.
func (f *fakeFish) resolve(p string) (string, error) {
	cur := "/"
	parts := strings.Split(strings.Trim(p, "/"), "/")
	for hops := 0; len(parts) > 0; {
		c := parts[0]
		parts = parts[1:]
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		l, err := os.Readlink(filepath.Join(f.root, next))
		if err != nil {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", errors.New("too many links")
		}
		if filepath.IsAbs(l) {
			cur = "/"
		}
		parts = append(strings.Split(strings.Trim(l, "/"), "/"), parts...)
	}
	if _, err := os.Lstat(filepath.Join(f.root, cur)); err != nil {
		return "", err
	}
	return cur, nil
}

func (f *fakeFish) cmd(ctx context.Context, name string, args []string, out io.Writer) error {
	switch name {
	case "echo":
		fmt.Fprintln(out, strings.Join(args, " "))
		return nil
	case "realpath":
		r, err := f.resolve(args[0])
		if err != nil {
			return err
		}
		fmt.Fprintln(out, r)
		return nil
	}
	r, err := f.resolve(args[0])
	if err != nil {
		return err
	}
	host := filepath.Join(f.root, r)
	st, err := os.Stat(host)
	if err != nil {
		return err
	}
	switch name {
	case "statns":
		sys := st.Sys().(*syscall.Stat_t)
		fmt.Fprintf(out, "st_dev: %d\nst_ino: %d\nst_mode: %d\nst_nlink: 1\nst_size: %d\nst_mtime_sec: %d\nst_mtime_nsec: 0\n",
			sys.Dev, sys.Ino, sys.Mode, st.Size(), st.ModTime().Unix())
		return nil
	case "download":
		if st.Mode()&fs.ModeNamedPipe != 0 {
			<-ctx.Done() // no writer: open blocks
			return ctx.Err()
		}
		if st.IsDir() {
			return errors.New("is a directory")
		}
		b, err := os.ReadFile(host)
		if err != nil {
			return err
		}
		return os.WriteFile(args[1], b, 0o600)
	case "tar-out":
		if !st.IsDir() {
			return errors.New("not a directory")
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		err := filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(host, p)
			fi, _ := d.Info()
			link := ""
			if fi.Mode()&fs.ModeSymlink != 0 {
				link, _ = os.Readlink(p)
			}
			hdr, err := tar.FileInfoHeader(fi, link)
			if err != nil {
				return err
			}
			hdr.Name = "./" + rel
			if d.IsDir() {
				hdr.Name += "/"
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if fi.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				_, err = tw.Write(b)
			}
			return err
		})
		if err != nil {
			return err
		}
		tw.Close()
		return os.WriteFile(args[1], buf.Bytes(), 0o600)
	}
	return fmt.Errorf("unknown command %s", name)
}

// fakeGuestRoot is a guest tree: a log file, a folder with a file and a
// link inside it, a link to a file, a link to a folder, a FIFO, and a
// link that leads nowhere.
func fakeGuestRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range map[string]string{"var/log/messages": "boot ok\n", "var/log/app/app.log": "app\n", "srv/data/d.txt": "data"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for l, target := range map[string]string{"var/log/app/current": "app.log", "var/log/latest": "/var/log/messages",
		"var/log/data": "/srv/data", "var/log/dangling": "/nowhere"} {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "var/log/pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// untar maps each member of a stream to its contents ("/" for a folder,
// "->x" for a link, "|" for a FIFO).
func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	got := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			got[hdr.Name] = "/"
		case tar.TypeSymlink:
			got[hdr.Name] = "->" + hdr.Linkname
		case tar.TypeFifo:
			got[hdr.Name] = "|"
		default:
			body, _ := io.ReadAll(tr)
			got[hdr.Name] = string(body)
		}
	}
}

func readerFor(ff *fakeFish, max int64) *diskReader {
	return &diskReader{disks: []guestDisk{{Path: "/disks/vm0_root.qcow2", Format: "qcow2"}}, run: ff.run, maxBytes: max,
		timeout: time.Minute, log: func(string, ...any) {}, sleep: func(time.Duration) {}}
}

// TestDiskReader: one guestfish start reads files and folders, following
// links inside the guest's tree; a missing path and a dangling link are
// reported missing; a FIFO stops the run at once (its download would
// block) and the others are read again without it; a folder reached
// through a link is archived by its real path.
func TestDiskReader(t *testing.T) {
	ff := &fakeFish{root: fakeGuestRoot(t)}
	var out bytes.Buffer
	paths := []string{"/var/log/messages", "/var/log/app", "/var/log/latest", "/var/log/nope", "/var/log/dangling", "/var/log/pipe", "/var/log/data"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	missing, err := readerFor(ff, 1<<20).read(ctx, paths, &out)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if fmt.Sprint(missing) != "[/var/log/nope /var/log/dangling]" {
		t.Errorf("missing = %v", missing)
	}
	want := map[string]string{
		"var/log/messages": "boot ok\n", "var/log/app/": "/", "var/log/app/app.log": "app\n", "var/log/app/current": "->app.log",
		"var/log/latest": "boot ok\n", "var/log/pipe": "|", "var/log/data/": "/", "var/log/data/d.txt": "data",
	}
	if got := untar(t, out.Bytes()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stream:\n got %v\nwant %v", got, want)
	}
	// The first run stops at the FIFO, the second reads the others, the
	// third the folder behind /var/log/data by its real path.
	if ff.runs != 3 {
		t.Errorf("%d guestfish runs, want 3", ff.runs)
	}
	a := strings.Join(ff.argvs[0], " ")
	for _, w := range []string{"--ro ", "--format=qcow2 -a /disks/vm0_root.qcow2 -i --"} {
		if !strings.Contains(a, w) {
			t.Errorf("argv %q lacks %q", a, w)
		}
	}
	if last := ff.argvs[2]; !strings.Contains(strings.Join(last, " "), "-tar-out /srv/data ") {
		t.Errorf("the linked folder was not archived by its real path: %q", last)
	}
}

// TestDiskReaderRetries: a start that fails before any command ran is
// tried again when the failure may pass (a lock, the appliance), not when
// it will not (no OS on the disks); a run that fails part way is not.
func TestDiskReaderRetries(t *testing.T) {
	tests := []struct {
		name     string
		fails    int
		stderr   string
		wantRuns int
		wantErr  string
	}{
		{"lock held a moment", 1, "libguestfs: error: qemu-system-x86_64: Failed to get shared \"write\" lock\n", 2, ""},
		{"appliance never boots", 5, "libguestfs: error: guestfs_launch failed.\n", 3, "guestfs_launch failed"},
		{"no OS", 5, "guestfish: no operating system was found on this disk\n", 1, "no operating system"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ff := &fakeFish{root: fakeGuestRoot(t), failStarts: tc.fails, startErr: tc.stderr}
			var out bytes.Buffer
			_, err := readerFor(ff, 1<<20).read(context.Background(), []string{"/var/log/messages"}, &out)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("read = %v, want %q", err, tc.wantErr)
			}
			if ff.runs != tc.wantRuns {
				t.Errorf("%d runs, want %d", ff.runs, tc.wantRuns)
			}
		})
	}
}

// TestDiskReaderCap: contents past the cap fail the read.
func TestDiskReaderCap(t *testing.T) {
	root := fakeGuestRoot(t)
	if err := os.WriteFile(filepath.Join(root, "var/log/big"), bytes.Repeat([]byte("x"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	ff := &fakeFish{root: root}
	_, err := readerFor(ff, 1000).read(context.Background(), []string{"/var/log/big"}, io.Discard)
	if !errors.Is(err, errOverCap) {
		t.Fatalf("read = %v, want errOverCap", err)
	}
}

// TestDiskReaderHostileOutput: a guest whose realpath answer holds lines
// like the markers (a link to a folder whose name has newlines) cannot
// fake another path's answer: the markers carry a nonce.
func TestDiskReaderHostileOutput(t *testing.T) {
	root := fakeGuestRoot(t)
	evil := "x\n@@lago-0:1:stat\nst_mode: 8592\n"
	if err := os.MkdirAll(filepath.Join(root, "var/log", evil), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/log", evil, "f"), []byte("F"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(evil, filepath.Join(root, "var/log/evil")); err != nil {
		t.Fatal(err)
	}
	ff := &fakeFish{root: root}
	var out bytes.Buffer
	missing, err := readerFor(ff, 1<<20).read(context.Background(), []string{"/var/log/evil", "/var/log/messages"}, &out)
	if err != nil || len(missing) != 0 {
		t.Fatalf("read = %v, %v", missing, err)
	}
	want := map[string]string{"var/log/evil/": "/", "var/log/evil/f": "F", "var/log/messages": "boot ok\n"}
	if got := untar(t, out.Bytes()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stream:\n got %v\nwant %v", got, want)
	}
}

// TestReadFilesProvider: the provider refuses a running domain and bad
// paths, hands guestfish every disk but ISOs with the libguestfs
// environment, and refuses remote mode as unsupported.
func TestReadFilesProvider(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "vm0_root.qcow2")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	vm := &providerv1.VM{Name: "vm0", Disks: []*providerv1.Disk{{Name: "root", Type: "file", Format: "qcow2", Path: disk, MakeACopy: true},
		{Name: "cd", Type: "iso", SourcePath: "/isos/x.iso"}}}
	ff := &fakeFish{root: fakeGuestRoot(t)}
	guestfishRun = ff.run
	defer func() { guestfishRun = nil }()
	t.Setenv("LIBGUESTFS_BACKEND", "")
	t.Setenv("LIBGUESTFS_BACKEND_SETTINGS", "")

	fc := newFakeConn()
	p := newTestProvider(t, fc, map[string]string{SettingDomainType: "qemu"}, nil)
	var out bytes.Buffer
	missing, err := p.ReadFiles(context.Background(), testEnv, vm, []string{"/var/log/messages", "/nope"}, 0, &out)
	if err != nil || fmt.Sprint(missing) != "[/nope]" {
		t.Fatalf("ReadFiles = %v, %v", missing, err)
	}
	if got := untar(t, out.Bytes()); got["var/log/messages"] != "boot ok\n" {
		t.Errorf("stream %v", got)
	}
	a := strings.Join(ff.argvs[0], " ")
	if !strings.Contains(a, "-a "+disk) || strings.Contains(a, "x.iso") {
		t.Errorf("argv %q", a)
	}
	env := append([]string(nil), ff.env...)
	sort.Strings(env)
	if fmt.Sprint(env) != "[LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg]" {
		t.Errorf("env %v", env)
	}

	for _, bad := range []string{"rel", "/a/../b", "/", "/a\nb"} {
		if _, err := p.ReadFiles(context.Background(), testEnv, vm, []string{bad}, 0, io.Discard); err == nil || !strings.Contains(err.Error(), "not a path to read") {
			t.Errorf("ReadFiles(%q) = %v", bad, err)
		}
	}

	fc.doms[domainName(testUUID, "vm0")] = &fakeDom{state: DomainRunning}
	runs := ff.runs
	_, err = p.ReadFiles(context.Background(), testEnv, vm, []string{"/var/log/messages"}, 0, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is running, its disks are in use") || ff.runs != runs {
		t.Errorf("ReadFiles of a running VM = %v (%d guestfish runs)", err, ff.runs-runs)
	}

	remote := newTestProvider(t, newFakeConn(), map[string]string{SettingURL: "qemu+tcp://h:1/system"}, nil)
	if _, err := remote.ReadFiles(context.Background(), testEnv, vm, []string{"/x"}, 0, io.Discard); !errors.Is(err, sdk.ErrNotImplemented) {
		t.Errorf("remote ReadFiles = %v, want ErrNotImplemented", err)
	}
}
