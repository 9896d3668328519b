package tinymls

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecrypt feeds arbitrary ciphertexts and AAD to a fresh context joined
// to the KAT group. `go test` runs the seeds (the KAT's messages, valid and
// not, and edge cases); `go test -fuzz=FuzzDecrypt` explores further.
//
// Properties: Decrypt never fails with anything but MALFORMED, AUTH or
// EPOCH_UNKNOWN (never INTERNAL: no panic in the library); a failure returns
// nil, leaves dst's contents alone and never moves the epoch (a forged header
// must not); a success returns exactly len(ct)-40 bytes after dst, comes from
// a well-formed header, adopts that header's epoch if it is ahead, and is
// refused as a replay the second time.
func FuzzDecrypt(f *testing.F) {
	kat := loadKAT(f)
	for _, step := range kat.DecryptSequence {
		f.Add(unhex(f, step.Name, step.Ciphertext), unhex(f, step.Name, step.AAD))
	}
	valid := unhex(f, "first", kat.DecryptSequence[0].Ciphertext)
	f.Add([]byte{}, []byte{})
	f.Add(valid[:HeaderLen], []byte{})
	f.Add(valid[:overhead], []byte{})
	f.Add(append(bytes.Clone(valid), 0), []byte{})
	f.Add(valid, []byte("unexpected aad"))
	far := bytes.Clone(valid)
	putEpoch(far, maxEpoch)
	f.Add(far, []byte{})
	v1 := bytes.Clone(valid)
	v1[0] = 1
	f.Add(v1, []byte{})

	secret := unhex(f, "group_secret", kat.GroupSecret)
	id := unhex(f, "group_id", kat.GroupID)
	f.Fuzz(func(t *testing.T, ct, aad []byte) {
		c, err := Join(secret, id, manualConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		orig := bytes.Clone(ct)
		dst := append(make([]byte, 0, 8), "dst"...)

		got, err := c.Decrypt(dst, ct, aad)
		if !bytes.Equal(ct, orig) {
			t.Fatal("Decrypt changed its input")
		}
		if string(dst) != "dst" {
			t.Fatalf("Decrypt changed dst's contents to %q", dst)
		}
		epoch := mustEpoch(t, c)
		if err != nil {
			var s Status
			if !errors.As(err, &s) {
				t.Fatalf("not a Status: %v", err)
			}
			switch s {
			case ErrMalformed, ErrAuth, ErrEpochUnknown:
			default:
				t.Fatalf("unexpected status %v", err)
			}
			if got != nil {
				t.Fatalf("a failed Decrypt returned %d bytes", len(got))
			}
			if epoch != 0 {
				t.Fatalf("a rejected message moved the epoch to %d", epoch)
			}
			return
		}
		if len(ct) < overhead || len(got) != len("dst")+len(ct)-overhead || string(got[:3]) != "dst" {
			t.Fatalf("Decrypt of %d bytes returned %d bytes", len(ct), len(got))
		}
		h := parseHeader(t, ct)
		if h.version != 2 || h.suite != 1 {
			t.Fatalf("accepted a header %+v", h)
		}
		if epoch != h.epoch {
			t.Fatalf("accepted a message of epoch %d, context at %d", h.epoch, epoch)
		}
		_, err = c.Decrypt(nil, ct, aad)
		wantStatus(t, "the same message again", err, ErrReplay)
	})
}

// FuzzRoundTrip: whatever is encrypted decrypts to itself with the same AAD
// and fails authentication with any other.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte("hello"), []byte{})
	f.Add([]byte{}, []byte("aad"))
	f.Add(pattern(70000, 1), pattern(300, 2))
	c, err := New(manualConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	f.Fuzz(func(t *testing.T, pt, aad []byte) {
		ct, err := c.Encrypt(nil, pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(pt)+c.Overhead() {
			t.Fatalf("ciphertext of %d bytes for %d", len(ct), len(pt))
		}
		got, err := c.Decrypt(nil, ct, aad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("round trip: %v", err)
		}
		_, err = c.Decrypt(nil, ct, append(bytes.Clone(aad), 0))
		wantStatus(t, "other aad", err, ErrAuth)
	})
}
