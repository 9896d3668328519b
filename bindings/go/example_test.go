package tinymls_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log"

	tinymls "github.com/tinymls/tinymls/bindings/go"
)

// A local context: only it can read what it encrypts.
func ExampleNew() {
	ctx, err := tinymls.New(nil) // nil: the default configuration
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()

	aad := []byte("bound to the message, not encrypted")
	ct, err := ctx.Encrypt(nil, []byte("hello, tinymls"), aad)
	if err != nil {
		log.Fatal(err)
	}
	pt, err := ctx.Decrypt(nil, ct, aad)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d-byte ciphertext: %s\n", len(ct), pt)
	// Output: 54-byte ciphertext: hello, tinymls
}

// Two members of a group: whoever holds the group secret reads the others.
func ExampleJoin() {
	secret := make([]byte, tinymls.MinGroupSecretLen)
	if _, err := rand.Read(secret); err != nil {
		log.Fatal(err)
	}
	groupID := []byte("example group")

	alice, err := tinymls.Join(secret, groupID, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	bob, err := tinymls.Join(secret, groupID, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()
	clear(secret) // the library keeps its own copy only until the first epoch exists

	ct, err := alice.Encrypt(nil, []byte("hi bob"), nil)
	if err != nil {
		log.Fatal(err)
	}
	pt, err := bob.Decrypt(nil, ct, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(pt))

	// The same message twice is a replay.
	_, err = bob.Decrypt(nil, ct, nil)
	fmt.Println(errors.Is(err, tinymls.ErrReplay))
	// Output:
	// hi bob
	// true
}

// Errors are Status values; test them with errors.Is.
func Example_errors() {
	ctx, err := tinymls.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	ct, err := ctx.Encrypt(nil, []byte("payload"), nil)
	if err != nil {
		log.Fatal(err)
	}

	ct[len(ct)-1] ^= 1 // tamper with the tag
	_, err = ctx.Decrypt(nil, ct, nil)
	switch {
	case errors.Is(err, tinymls.ErrAuth):
		fmt.Println("tampered message rejected")
	case errors.Is(err, tinymls.ErrReplay), errors.Is(err, tinymls.ErrEpochExpired):
		fmt.Println("stale message")
	case err != nil:
		fmt.Println("other error:", err)
	}

	_, err = ctx.Decrypt(nil, []byte("too short"), nil)
	fmt.Println(errors.Is(err, tinymls.ErrMalformed))

	var st tinymls.Status
	if errors.As(err, &st) {
		fmt.Println(uint32(st))
	}

	ctx.Close()
	_, err = ctx.Encrypt(nil, []byte("late"), nil)
	fmt.Println(errors.Is(err, tinymls.ErrClosed), ctx.Close())
	// Output:
	// tampered message rejected
	// true
	// 5
	// true <nil>
}

// Rotation by hand; older epochs stay readable while they are retained.
func ExampleContext_Rotate() {
	cfg := tinymls.DefaultConfig()
	cfg.RatchetPeriod = 0 // no periodic rotation: only Rotate moves the epoch
	cfg.MaxEpochs = 4
	ctx, err := tinymls.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()

	old, err := ctx.Encrypt(nil, []byte("from epoch 0"), nil)
	if err != nil {
		log.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := ctx.Rotate(); err != nil {
			log.Fatal(err)
		}
	}
	epoch, _ := ctx.Epoch()
	pt, err := ctx.Decrypt(nil, old, nil)
	fmt.Println(epoch, string(pt), err)

	if err := ctx.Rotate(); err != nil { // epoch 0 leaves the window of 4
		log.Fatal(err)
	}
	_, err = ctx.Decrypt(nil, old, nil)
	fmt.Println(errors.Is(err, tinymls.ErrEpochExpired))
	// Output:
	// 3 from epoch 0 <nil>
	// true
}

// Encrypt and Decrypt append to dst, as crypto/cipher's Seal and Open do.
func ExampleContext_Encrypt() {
	ctx, err := tinymls.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()

	// Reuse one buffer for many messages.
	buf := make([]byte, 0, 1024)
	for _, msg := range []string{"one", "two"} {
		ct, err := ctx.Encrypt(buf[:0], []byte(msg), nil)
		if err != nil {
			log.Fatal(err)
		}
		// Decrypt in place: the plaintext overwrites the ciphertext.
		pt, err := ctx.Decrypt(ct[:0], ct, nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(pt), len(ct)-ctx.Overhead())
	}
	// Output:
	// one 3
	// two 3
}

func ExampleDefaultConfig() {
	cfg := tinymls.DefaultConfig()
	fmt.Println(cfg.RatchetPeriod, cfg.MaxEpochs, cfg.ReplayWindow, cfg.StateLifetime)
	// Output: 100ms 64 128 24h0m0s
}
