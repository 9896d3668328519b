// A program outside the repository built against the Go module that
// `make dist-go` writes (tests/dist_go/run.sh gives it a go.mod whose
// replace directive points at a copy of the module): a round trip between
// two members of a group, a tampered message refused, the library's
// version the expected one. Prints one line; exits non-zero on any failure.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	tinymls "github.com/tinymls/tinymls/bindings/go"
)

func main() {
	if len(os.Args) != 2 {
		fail("usage: distcheck EXPECTED_VERSION")
	}
	if v := tinymls.Version(); v != os.Args[1] {
		fail("library version %q, want %q", v, os.Args[1])
	}
	secret := bytes.Repeat([]byte{0x5a}, 32)
	alice, err := tinymls.Join(secret, []byte("dist-go"), nil)
	if err != nil {
		fail("join: %v", err)
	}
	defer alice.Close()
	bob, err := tinymls.Join(secret, []byte("dist-go"), nil)
	if err != nil {
		fail("join: %v", err)
	}
	defer bob.Close()

	msg := []byte("hello from a module outside the checkout")
	aad := []byte("dist")
	ct, err := alice.Encrypt(nil, msg, aad)
	if err != nil {
		fail("encrypt: %v", err)
	}
	pt, err := bob.Decrypt(nil, ct, aad)
	if err != nil || !bytes.Equal(pt, msg) {
		fail("decrypt: %q, %v", pt, err)
	}
	ct2, err := alice.Encrypt(nil, msg, aad)
	if err != nil {
		fail("encrypt: %v", err)
	}
	ct2[len(ct2)-1] ^= 1
	if _, err := bob.Decrypt(nil, ct2, aad); !errors.Is(err, tinymls.ErrAuth) {
		fail("tampered message: %v, want ErrAuth", err)
	}
	fmt.Printf("distcheck ok: tinymls %s (%s), %d-byte message, tampered message refused\n",
		tinymls.Version(), tinymls.Backend(), len(msg))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "distcheck: "+format+"\n", args...)
	os.Exit(1)
}
