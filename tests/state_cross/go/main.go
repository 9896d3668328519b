// Cross-language state export/import: the Go side (see ../README.md).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	tinymls "github.com/tinymls/tinymls/bindings/go"
)

var (
	group  = []byte("state-cross")
	secret = func() []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}()
	kek = bytes.Repeat([]byte{0x33}, tinymls.KEKLen)
)

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "state_cross (go):", err)
		os.Exit(1)
	}
}

func put(dir, name string, b []byte) { check(os.WriteFile(filepath.Join(dir, name), b, 0o600)) }

func get(dir, name string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	check(err)
	return b
}

func export(dir string) {
	cfg := tinymls.DefaultConfig()
	cfg.RatchetPeriod = 0
	a, err := tinymls.Join(secret, group, cfg)
	check(err)
	defer a.Close()
	s, err := tinymls.Join(secret, group, cfg)
	check(err)
	defer s.Close()
	read, err := s.Encrypt(nil, []byte("read before the export"), nil)
	check(err)
	_, err = a.Decrypt(nil, read, nil)
	check(err)
	m0, err := s.Encrypt(nil, []byte("epoch 0, sent before the export"), nil)
	check(err)
	check(s.Rotate())
	check(a.Rotate())
	m1, err := s.Encrypt(nil, []byte("epoch 1, sent before the export"), nil)
	check(err)
	blob, err := a.Export(kek, 0)
	check(err)
	cur, err := a.Export(kek, tinymls.ExportCurrentEpochOnly)
	check(err)
	id, err := a.SenderID()
	check(err)
	put(dir, "blob", blob)
	put(dir, "blob_current", cur)
	put(dir, "read.bin", read)
	put(dir, "m0.bin", m0)
	put(dir, "m1.bin", m1)
	put(dir, "sender", []byte(fmt.Sprintf("%016x", id)))
}

func expect(c *tinymls.Context, ct []byte, want string) {
	pt, err := c.Decrypt(nil, ct, nil)
	check(err)
	if string(pt) != want {
		check(fmt.Errorf("got %q, want %q", pt, want))
	}
}

func expectErr(c *tinymls.Context, ct []byte, want error) {
	if _, err := c.Decrypt(nil, ct, nil); !errors.Is(err, want) {
		check(fmt.Errorf("decrypt: %v, want %v", err, want))
	}
}

func importDir(dir string) {
	c, err := tinymls.Import(get(dir, "blob"), kek, nil)
	check(err)
	defer c.Close()
	expect(c, get(dir, "m0.bin"), "epoch 0, sent before the export")
	expect(c, get(dir, "m1.bin"), "epoch 1, sent before the export")
	expectErr(c, get(dir, "read.bin"), tinymls.ErrReplay)
	if e, err := c.Epoch(); err != nil || e != 1 {
		check(fmt.Errorf("epoch %d (%v), want 1", e, err))
	}
	id, err := c.SenderID()
	check(err)
	if fmt.Sprintf("%016x", id) == string(get(dir, "sender")) {
		check(errors.New("the import kept the exporter's sender id"))
	}
	d, err := tinymls.Import(get(dir, "blob_current"), kek, nil)
	check(err)
	defer d.Close()
	expectErr(d, get(dir, "m0.bin"), tinymls.ErrEpochExpired)
	expect(d, get(dir, "m1.bin"), "epoch 1, sent before the export")
	if _, err := tinymls.Import(get(dir, "blob"), make([]byte, tinymls.KEKLen), nil); !errors.Is(err, tinymls.ErrState) {
		check(fmt.Errorf("wrong KEK: %v", err))
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: state_cross export|import DIR")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "export":
		export(os.Args[2])
	case "import":
		importDir(os.Args[2])
	default:
		os.Exit(2)
	}
}
