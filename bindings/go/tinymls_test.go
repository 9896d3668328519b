package tinymls

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

var _ io.Closer = (*Context)(nil)

func TestVersionAndBackend(t *testing.T) {
	v := Version()
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("Version() = %q, want MAJOR.MINOR.PATCH", v)
	}
	// One version source: Cargo.toml.
	cargo, err := os.ReadFile("../../Cargo.toml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^version = "([^"]+)"`).FindSubmatch(cargo)
	if m == nil {
		t.Fatal("no version in Cargo.toml")
	}
	if v != string(m[1]) {
		t.Fatalf("Version() = %q, Cargo.toml says %q", v, m[1])
	}
	b := Backend()
	if b != "aws-lc-rs" && b != "rust-crypto" && b != "aws-lc-rs-fips" {
		t.Fatalf("Backend() = %q", b)
	}
	// FIPS mode exactly when the library was built with the FIPS provider.
	if FIPSMode() != (b == "aws-lc-rs-fips") {
		t.Fatalf("FIPSMode() = %v with backend %q", FIPSMode(), b)
	}
	if os.Getenv("TINYMLS_EXPECT_FIPS") == "1" && !FIPSMode() {
		t.Fatal("make test-fips runs this against the FIPS build")
	}
}

func TestABICheck(t *testing.T) {
	if err := checkABI(); err != nil {
		t.Fatalf("the loaded library: %v", err)
	}
	if abiVersion != 2 {
		t.Fatalf("the binding is for ABI %d, SPEC v2 is ABI 2", abiVersion)
	}
	if err := abiCompatible(abiVersion, configSize); err != nil {
		t.Fatalf("matching ABI refused: %v", err)
	}
	for _, c := range []struct {
		abi  uint32
		size uint64
	}{{1, configSize}, {abiVersion + 1, configSize}, {0, configSize}, {abiVersion, configSize + 8}, {abiVersion, 0}} {
		err := abiCompatible(c.abi, c.size)
		if !errors.Is(err, ErrIncompatibleLibrary) {
			t.Errorf("abiCompatible(%d, %d) = %v, want ErrIncompatibleLibrary", c.abi, c.size, err)
		}
		// The message names both sides, so that a v1 library is recognised.
		if want := fmt.Sprintf("library ABI %d with a %d-byte", c.abi, c.size); err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("abiCompatible(%d, %d): %q does not say %q", c.abi, c.size, err, want)
		}
		var s Status
		if errors.As(err, &s) {
			t.Errorf("an ABI mismatch is not a library status, got %v", s)
		}
	}
}

// specNames are the sentinels' names in SPEC.md section 9, written here a
// second time on purpose: a status the library renames or renumbers fails
// TestSentinelsMatchTheLibrary.
var specNames = map[Status]string{
	ErrNullPointer: "NULL_POINTER", ErrInvalidArgument: "INVALID_ARGUMENT",
	ErrInvalidConfig: "INVALID_CONFIG", ErrBufferTooSmall: "BUFFER_TOO_SMALL",
	ErrMalformed: "MALFORMED", ErrAuth: "AUTH", ErrReplay: "REPLAY",
	ErrEpochExpired: "EPOCH_EXPIRED", ErrEpochUnknown: "EPOCH_UNKNOWN",
	ErrSenderLimit: "SENDER_LIMIT", ErrExhausted: "EXHAUSTED",
	ErrRateLimited: "RATE_LIMITED", ErrClosed: "CLOSED", ErrRNG: "RNG",
	ErrState: "STATE", ErrInternal: "INTERNAL",
}

// Every sentinel has the number and name tinymls_status_name gives it, and
// every status the library knows has a sentinel.
func TestSentinelsMatchTheLibrary(t *testing.T) {
	if len(specNames) != len(allStatuses) {
		t.Fatalf("%d names for %d sentinels", len(specNames), len(allStatuses))
	}
	if n := Status(0).Name(); n != "OK" {
		t.Errorf("status 0 is %q, want OK", n)
	}
	for _, s := range allStatuses {
		if got := s.Name(); got != specNames[s] {
			t.Errorf("sentinel %d (%s): the library names it %q", uint32(s), specNames[s], got)
		}
	}
	last := Status(len(allStatuses))
	for s := last + 1; s < 256; s++ {
		if n := s.Name(); n != unknownStatusName {
			t.Errorf("the library knows status %d (%s), which has no sentinel", uint32(s), n)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	seen := map[string]bool{}
	for i, s := range allStatuses {
		if int(s) != i+1 {
			t.Fatalf("sentinel %v has number %d, want %d", s, uint32(s), i+1)
		}
		msg := s.Error()
		if !strings.HasPrefix(msg, "tinymls: ") || !strings.HasSuffix(msg, " (TINYMLS_ERR_"+specNames[s]+")") {
			t.Errorf("Status(%d).Error() = %q", uint32(s), msg)
		}
		if strings.Contains(msg, "unknown status") || seen[msg] {
			t.Errorf("Status(%d).Error() = %q is not a distinct description", uint32(s), msg)
		}
		seen[msg] = true
		for _, other := range allStatuses {
			if errors.Is(s, other) != (s == other) {
				t.Errorf("errors.Is(%v, %v) = %v", s, other, !(s == other))
			}
		}
		var wrapped error = &wrapErr{s}
		if !errors.Is(wrapped, s) {
			t.Errorf("errors.Is does not see %v through a wrapper", s)
		}
	}
	if msg := Status(99).Error(); !strings.Contains(msg, "unknown status") || !strings.Contains(msg, "99") {
		t.Errorf("Status(99).Error() = %q", msg)
	}
	if msg := ErrAuth.Error(); msg != "tinymls: authentication failed (TINYMLS_ERR_AUTH)" {
		t.Errorf("ErrAuth.Error() = %q", msg)
	}
	if msg := Status(0).Error(); !strings.HasSuffix(msg, " (TINYMLS_OK)") {
		t.Errorf("Status(0).Error() = %q", msg)
	}
}

type wrapErr struct{ err error }

func (w *wrapErr) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapErr) Unwrap() error { return w.err }

func TestDefaultConfigMatchesSpec(t *testing.T) {
	want := Config{
		KeySize:             32,
		NonceSize:           12,
		RatchetPeriod:       100 * time.Millisecond,
		RotationJitterPct:   10,
		MaxEpochs:           64,
		MaxOperations:       1 << 23,
		MaxKeyAge:           24 * time.Hour,
		MinRotationInterval: 0,
		StateLifetime:       24 * time.Hour,
		GCInterval:          time.Second,
		ReplayWindow:        128,
		MaxFutureEpochs:     1024,
		MaxSenders:          1024,
	}
	got := DefaultConfig()
	if *got != want {
		t.Fatalf("DefaultConfig() = %+v\nwant (SPEC.md section 7) %+v", *got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	var nilCfg *Config
	if err := nilCfg.Validate(); err != nil {
		t.Fatalf("a nil Config (the defaults) does not validate: %v", err)
	}
	// DefaultConfig hands out a fresh value each time.
	got.MaxEpochs = 1
	if DefaultConfig().MaxEpochs != 64 {
		t.Fatal("DefaultConfig shares its result")
	}
}

// TestConfigFields checks every field on both sides of its range, which also
// proves each Go field lands in the right C field.
func TestConfigFields(t *testing.T) {
	// localOnly: in range for Validate and New, and for a shared context
	// with RatchetPeriod 0, but not for one following the clock (the
	// defaults' 100ms period): SPEC v2 section 7.2 needs MaxEpochs >= 2,
	// MaxFutureEpochs >= 1 and StateLifetime > RatchetPeriod there.
	cases := []struct {
		name      string
		set       func(*Config)
		valid     bool
		localOnly bool
	}{
		{"KeySize=32", func(c *Config) { c.KeySize = 32 }, true, false},
		{"KeySize=16", func(c *Config) { c.KeySize = 16 }, false, false},
		{"KeySize=24", func(c *Config) { c.KeySize = 24 }, false, false},
		{"NonceSize=12", func(c *Config) { c.NonceSize = 12 }, true, false},
		{"NonceSize=16", func(c *Config) { c.NonceSize = 16 }, false, false},
		{"RatchetPeriod=0", func(c *Config) { c.RatchetPeriod = 0 }, true, false},
		{"RatchetPeriod=1ms", func(c *Config) { c.RatchetPeriod = time.Millisecond }, true, false},
		{"RatchetPeriod=StateLifetime", func(c *Config) { c.RatchetPeriod = c.StateLifetime }, true, true},
		{"RatchetPeriod=-1ms", func(c *Config) { c.RatchetPeriod = -time.Millisecond }, false, false},
		{"RatchetPeriod=1500us", func(c *Config) { c.RatchetPeriod = 1500 * time.Microsecond }, false, false},
		{"RotationJitterPct=0", func(c *Config) { c.RotationJitterPct = 0 }, true, false},
		{"RotationJitterPct=50", func(c *Config) { c.RotationJitterPct = 50 }, true, false},
		{"RotationJitterPct=51", func(c *Config) { c.RotationJitterPct = 51 }, false, false},
		{"MaxEpochs=1", func(c *Config) { c.MaxEpochs = 1 }, true, true},
		{"MaxEpochs=2", func(c *Config) { c.MaxEpochs = 2 }, true, false},
		{"MaxEpochs=4096", func(c *Config) { c.MaxEpochs = 4096 }, true, false},
		{"MaxEpochs=0", func(c *Config) { c.MaxEpochs = 0 }, false, false},
		{"MaxEpochs=4097", func(c *Config) { c.MaxEpochs = 4097 }, false, false},
		{"MaxOperations=1", func(c *Config) { c.MaxOperations = 1 }, true, false},
		{"MaxOperations=2^23", func(c *Config) { c.MaxOperations = 1 << 23 }, true, false},
		{"MaxOperations=0", func(c *Config) { c.MaxOperations = 0 }, false, false},
		{"MaxOperations=2^23+1", func(c *Config) { c.MaxOperations = 1<<23 + 1 }, false, false},
		{"MaxOperations=2^32", func(c *Config) { c.MaxOperations = 1 << 32 }, false, false},
		{"MaxKeyAge=1ms", func(c *Config) { c.MaxKeyAge = time.Millisecond }, true, false},
		{"MaxKeyAge=0", func(c *Config) { c.MaxKeyAge = 0 }, false, false},
		{"MaxKeyAge=1ns", func(c *Config) { c.MaxKeyAge = 1 }, false, false},
		{"MinRotationInterval=0", func(c *Config) { c.MinRotationInterval = 0 }, true, false},
		{"MinRotationInterval=1h", func(c *Config) { c.MinRotationInterval = time.Hour }, true, false},
		{"MinRotationInterval=-1h", func(c *Config) { c.MinRotationInterval = -time.Hour }, false, false},
		{"StateLifetime=1ms", func(c *Config) { c.StateLifetime = time.Millisecond }, true, true},
		{"StateLifetime=RatchetPeriod", func(c *Config) { c.StateLifetime = c.RatchetPeriod }, true, true},
		{"StateLifetime=RatchetPeriod+1ms", func(c *Config) { c.StateLifetime = c.RatchetPeriod + time.Millisecond }, true, false},
		{"StateLifetime=0", func(c *Config) { c.StateLifetime = 0 }, false, false},
		{"GCInterval=1ms", func(c *Config) { c.GCInterval = time.Millisecond }, true, false},
		{"GCInterval=0", func(c *Config) { c.GCInterval = 0 }, false, false},
		{"ReplayWindow=0", func(c *Config) { c.ReplayWindow = 0 }, true, false},
		{"ReplayWindow=64", func(c *Config) { c.ReplayWindow = 64 }, true, false},
		{"ReplayWindow=4096", func(c *Config) { c.ReplayWindow = 4096 }, true, false},
		{"ReplayWindow=65", func(c *Config) { c.ReplayWindow = 65 }, false, false},
		{"ReplayWindow=4160", func(c *Config) { c.ReplayWindow = 4160 }, false, false},
		{"MaxFutureEpochs=0", func(c *Config) { c.MaxFutureEpochs = 0 }, true, true},
		{"MaxFutureEpochs=1", func(c *Config) { c.MaxFutureEpochs = 1 }, true, false},
		{"MaxFutureEpochs=2^20", func(c *Config) { c.MaxFutureEpochs = 1 << 20 }, true, false},
		{"MaxFutureEpochs=2^20+1", func(c *Config) { c.MaxFutureEpochs = 1<<20 + 1 }, false, false},
		{"MaxSenders=1", func(c *Config) { c.MaxSenders = 1 }, true, false},
		{"MaxSenders=0", func(c *Config) { c.MaxSenders = 0 }, false, false},
	}
	secret, id := newGroup(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.set(cfg)
			errV := cfg.Validate()
			ctxN, errN := New(cfg)
			ctxJ, errJ := Join(secret, id, cfg)
			// A localOnly field in a shared group that does not follow the
			// clock (RatchetPeriod 0): only the rules every context meet.
			manual := *cfg
			manual.RatchetPeriod = 0
			ctxM, errM := Join(secret, id, &manual)
			for _, c := range []*Context{ctxN, ctxJ, ctxM} {
				if c != nil {
					if err := c.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				}
			}
			results := map[string]error{"Validate": errV, "New": errN, "Join": errJ}
			if tc.localOnly {
				results["Join with RatchetPeriod 0"] = errM
			}
			for what, err := range results {
				valid := tc.valid && !(tc.localOnly && what == "Join")
				if valid {
					if err != nil {
						t.Errorf("%s: %v", what, err)
					}
				} else {
					wantStatus(t, what, err, ErrInvalidConfig)
				}
			}
			if (!tc.valid && (ctxN != nil || ctxJ != nil)) || (tc.localOnly && ctxJ != nil) {
				t.Errorf("a failed New/Join returned a context")
			}
		})
	}
}

func TestJoinArguments(t *testing.T) {
	secret := pattern(MaxGroupSecretLen+1, 1)
	id := pattern(MaxGroupIDLen+1, 2)
	cases := []struct {
		name       string
		secret, id []byte
		want       error
	}{
		{"shortest", secret[:MinGroupSecretLen], id[:1], nil},
		{"longest", secret[:MaxGroupSecretLen], id[:MaxGroupIDLen], nil},
		{"secret too short", secret[:MinGroupSecretLen-1], id[:8], ErrInvalidArgument},
		{"secret empty", nil, id[:8], ErrInvalidArgument},
		{"secret too long", secret, id[:8], ErrInvalidArgument},
		{"id empty", secret[:32], []byte{}, ErrInvalidArgument},
		{"id nil", secret[:32], nil, ErrInvalidArgument},
		{"id too long", secret[:32], id, ErrInvalidArgument},
	}
	for _, tc := range cases {
		c, err := Join(tc.secret, tc.id, nil)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if err := c.Close(); err != nil {
				t.Errorf("%s: Close: %v", tc.name, err)
			}
			continue
		}
		wantStatus(t, tc.name, err, tc.want.(Status))
		if c != nil {
			t.Errorf("%s: a failed Join returned a context", tc.name)
		}
	}
}

// TestRoundTripAcrossRotations encrypts and decrypts in Go on one local
// context across manual rotations, with AAD, from empty to 1 MiB messages.
func TestRoundTripAcrossRotations(t *testing.T) {
	c := newLocal(t, manualConfig())
	sender, err := c.SenderID()
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 1, 15, 16, 17, 1000, 65535, 65536, 1 << 20}
	aads := [][]byte{nil, []byte("aad"), pattern(300, 9)}
	type msg struct {
		pt, aad, ct []byte
	}
	var msgs []msg
	for i, n := range sizes {
		pt := pattern(n, byte(i))
		aad := aads[i%len(aads)]
		ct := mustEncrypt(t, c, nil, pt, aad)
		if len(ct) != n+c.Overhead() {
			t.Fatalf("%d-byte plaintext gave a %d-byte ciphertext", n, len(ct))
		}
		h := parseHeader(t, ct)
		want := header{version: 2, suite: 1, epoch: uint64(i), sender: sender, seq: 0}
		if h != want {
			t.Fatalf("header %+v, want %+v", h, want)
		}
		if n >= 16 && bytes.Contains(ct, pt) {
			t.Fatal("the ciphertext contains the plaintext")
		}
		msgs = append(msgs, msg{pt, aad, ct})
		if err := c.Rotate(); err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if e := mustEpoch(t, c); e != uint64(i+1) {
			t.Fatalf("after %d rotations: epoch %d", i+1, e)
		}
	}
	// Every retained epoch still decrypts (own messages are not
	// replay-checked, so twice is fine); wrong AAD fails.
	for round := 0; round < 2; round++ {
		for i, m := range msgs {
			got, err := c.Decrypt(nil, m.ct, m.aad)
			if err != nil {
				t.Fatalf("message %d (%d bytes): %v", i, len(m.pt), err)
			}
			if !bytes.Equal(got, m.pt) {
				t.Fatalf("message %d (%d bytes) decrypted wrong", i, len(m.pt))
			}
			wrong := append(bytes.Clone(m.aad), 'x')
			_, err = c.Decrypt(nil, m.ct, wrong)
			wantStatus(t, "wrong aad", err, ErrAuth)
		}
	}
	// Two messages in one epoch take consecutive sequence numbers.
	a := parseHeader(t, mustEncrypt(t, c, nil, []byte("a"), nil))
	b := parseHeader(t, mustEncrypt(t, c, nil, []byte("b"), nil))
	if a.epoch != b.epoch || b.seq != a.seq+1 {
		t.Fatalf("headers %+v then %+v", a, b)
	}
}

// TestSharedGroup: two members of a group read each other across rotations;
// a replay, another group and a local context are refused.
func TestSharedGroup(t *testing.T) {
	secret, id := newGroup(t)
	alice := join(t, secret, id, manualConfig())
	bob := join(t, secret, id, manualConfig())
	aliceID, _ := alice.SenderID()
	bobID, _ := bob.SenderID()
	if aliceID == bobID {
		t.Fatal("two members drew the same sender id")
	}
	for i, n := range []int{0, 5, 4096, 1 << 20} {
		pt := pattern(n, byte(i))
		aad := []byte{byte(i), 'a', 'a', 'd'}
		ct := mustEncrypt(t, alice, nil, pt, aad)
		got, err := bob.Decrypt(nil, ct, aad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("message %d: %v", i, err)
		}
		_, err = bob.Decrypt(nil, ct, aad)
		wantStatus(t, "replay", err, ErrReplay)
		if ea, eb := mustEpoch(t, alice), mustEpoch(t, bob); ea != eb {
			t.Fatalf("bob did not follow alice: %d vs %d", eb, ea)
		}
		if err := alice.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	// Bob answers in his (followed) epoch; alice reads it.
	reply := mustEncrypt(t, bob, nil, []byte("reply"), nil)
	if got, err := alice.Decrypt(nil, reply, nil); err != nil || string(got) != "reply" {
		t.Fatalf("alice reading bob: %q, %v", got, err)
	}

	otherSecret, _ := newGroup(t)
	mallory := join(t, otherSecret, id, manualConfig())
	_, err := mallory.Decrypt(nil, mustEncrypt(t, bob, nil, []byte("x"), nil), nil)
	wantStatus(t, "another group", err, ErrAuth)

	local := newLocal(t, manualConfig())
	_, err = local.Decrypt(nil, mustEncrypt(t, bob, nil, []byte("x"), nil), nil)
	if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrEpochUnknown) {
		t.Fatalf("a local context read a group message: %v", err)
	}
}

func TestLocalContextsAreIsolated(t *testing.T) {
	a := newLocal(t, manualConfig())
	b := newLocal(t, manualConfig())
	_, err := b.Decrypt(nil, mustEncrypt(t, a, nil, []byte("secret"), nil), nil)
	wantStatus(t, "same epoch, other context", err, ErrAuth)
	for i := 0; i < 3; i++ {
		if err := a.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = b.Decrypt(nil, mustEncrypt(t, a, nil, []byte("secret"), nil), nil)
	wantStatus(t, "a local context never derives ahead", err, ErrEpochUnknown)
	if e := mustEpoch(t, b); e != 0 {
		t.Fatalf("the refused message moved the epoch to %d", e)
	}
}

func TestEpochExpired(t *testing.T) {
	cfg := manualConfig()
	cfg.MaxEpochs = 2
	c := newLocal(t, cfg)
	ct := mustEncrypt(t, c, nil, []byte("old"), nil)
	if err := c.Rotate(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decrypt(nil, ct, nil); err != nil || string(got) != "old" {
		t.Fatalf("a retained epoch: %q, %v", got, err)
	}
	if err := c.Rotate(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Decrypt(nil, ct, nil)
	wantStatus(t, "an epoch out of the window", err, ErrEpochExpired)
}

// TestEpochUnknownForShared: with RatchetPeriod 0, once a shared context
// has read another sender, it derives at most MaxFutureEpochs ahead. (Before
// that first message it adopts any authenticated distance: SPEC v2 section
// 7.3, a member joining a group that has been running for a while.)
func TestEpochUnknownForShared(t *testing.T) {
	secret, id := newGroup(t)
	cfg := manualConfig()
	cfg.MaxFutureEpochs = 2
	a := join(t, secret, id, cfg)
	b := join(t, secret, id, cfg)
	if _, err := b.Decrypt(nil, mustEncrypt(t, a, nil, []byte("near"), nil), nil); err != nil {
		t.Fatalf("epoch 0: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := a.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := b.Decrypt(nil, mustEncrypt(t, a, nil, []byte("far"), nil), nil)
	wantStatus(t, "3 epochs ahead with MaxFutureEpochs 2", err, ErrEpochUnknown)
	if e := mustEpoch(t, b); e != 0 {
		t.Fatalf("epoch moved to %d", e)
	}

	// A fresh member that has read no one yet adopts the far epoch.
	late := join(t, secret, id, cfg)
	if got, err := late.Decrypt(nil, mustEncrypt(t, a, nil, []byte("far"), nil), nil); err != nil || string(got) != "far" {
		t.Fatalf("a fresh member reading 3 epochs ahead: %q, %v", got, err)
	}
	if e := mustEpoch(t, late); e != 3 {
		t.Fatalf("the fresh member is at epoch %d, want 3 (adopted)", e)
	}
}

func TestSenderLimit(t *testing.T) {
	secret, id := newGroup(t)
	cfg := manualConfig()
	cfg.MaxSenders = 1
	rx := join(t, secret, id, cfg)
	// The senders count from epoch 0 like rx (RatchetPeriod 0), so both
	// messages are in one epoch whatever the clock does.
	s1 := join(t, secret, id, manualConfig())
	s2 := join(t, secret, id, manualConfig())
	if _, err := rx.Decrypt(nil, mustEncrypt(t, s1, nil, []byte("one"), nil), nil); err != nil {
		t.Fatal(err)
	}
	_, err := rx.Decrypt(nil, mustEncrypt(t, s2, nil, []byte("two"), nil), nil)
	wantStatus(t, "a second foreign sender", err, ErrSenderLimit)
}

func TestRateLimited(t *testing.T) {
	cfg := manualConfig()
	cfg.MinRotationInterval = time.Hour
	c := newLocal(t, cfg)
	// Creating a context is not a rotation (SPEC.md section 7): the first
	// manual rotation goes through, the second within the hour does not.
	if err := c.Rotate(); err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	before := mustEpoch(t, c)
	if before != 1 {
		t.Fatalf("epoch %d after one rotation", before)
	}
	wantStatus(t, "second rotation", c.Rotate(), ErrRateLimited)
	if e := mustEpoch(t, c); e != before {
		t.Fatalf("a refused rotation moved the epoch from %d to %d", before, e)
	}
}

func TestMalformed(t *testing.T) {
	c := newLocal(t, manualConfig())
	good := mustEncrypt(t, c, nil, []byte("hello"), nil)
	cases := map[string][]byte{
		"nil":         nil,
		"empty":       {},
		"one byte":    {1},
		"39 bytes":    good[:39],
		"header only": good[:HeaderLen],
		"v1 header":   append([]byte{1}, good[1:]...),
		"version 3":   append([]byte{3}, good[1:]...),
		"version 0":   append([]byte{0}, good[1:]...),
		"bad suite":   append([]byte{2, 2}, good[2:]...),
		"suite 0":     append([]byte{2, 0}, good[2:]...),
	}
	for name, ct := range cases {
		dst := []byte("keep")
		got, err := c.Decrypt(dst, ct, nil)
		wantStatus(t, name, err, ErrMalformed)
		if got != nil || string(dst) != "keep" {
			t.Fatalf("%s: returned %q, dst %q", name, got, dst)
		}
	}
}

func TestTamperingAnyByteFails(t *testing.T) {
	c := newLocal(t, manualConfig())
	pt := []byte("every byte of a ciphertext is authenticated")
	ct := mustEncrypt(t, c, nil, pt, []byte("aad"))
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		got, err := c.Decrypt(nil, bad, []byte("aad"))
		if err == nil || got != nil {
			t.Fatalf("flipping byte %d was accepted", i)
		}
		var s Status
		if !errors.As(err, &s) || s == ErrInternal {
			t.Fatalf("flipping byte %d: %v", i, err)
		}
	}
	// Truncated and extended.
	_, err := c.Decrypt(nil, ct[:len(ct)-1], []byte("aad"))
	wantStatus(t, "truncated", err, ErrAuth)
	_, err = c.Decrypt(nil, append(bytes.Clone(ct), 0), []byte("aad"))
	wantStatus(t, "extended", err, ErrAuth)
}

// TestAppendSemantics checks crypto/cipher's dst rules on both directions.
func TestAppendSemantics(t *testing.T) {
	c := newLocal(t, manualConfig())
	pt := []byte("append semantics")
	aad := []byte("aad")

	// Spare capacity is reused; the prefix is kept.
	dst := append(make([]byte, 0, 256), "pre:"...)
	ct := mustEncrypt(t, c, dst, pt, aad)
	if &ct[0] != &dst[0] || string(ct[:4]) != "pre:" || len(ct) != 4+len(pt)+40 {
		t.Fatal("Encrypt did not append into dst's capacity")
	}
	out, err := c.Decrypt(dst[:2], ct[4:], aad)
	if err != nil || string(out) != "pr"+string(pt) {
		t.Fatalf("Decrypt into a short prefix overlapping the ciphertext: %q, %v", out, err)
	}

	// Too little capacity: a new array, dst untouched.
	small := []byte("xy")
	ct2 := mustEncrypt(t, c, small, pt, aad)
	if &ct2[0] == &small[0] || string(small) != "xy" || string(ct2[:2]) != "xy" {
		t.Fatal("Encrypt with a full dst")
	}
	pt2, err := c.Decrypt(small, ct2[2:], aad)
	if err != nil || string(pt2) != "xy"+string(pt) || string(small) != "xy" {
		t.Fatalf("Decrypt with a full dst: %q, %v", pt2, err)
	}

	// In place, as crypto/cipher allows: dst = plaintext[:0], then
	// dst = ciphertext[:0].
	buf := make([]byte, len(pt), len(pt)+40)
	copy(buf, pt)
	sealed := mustEncrypt(t, c, buf[:0], buf, aad)
	if &sealed[0] != &buf[0] {
		t.Fatal("in-place Encrypt did not reuse the buffer")
	}
	opened, err := c.Decrypt(sealed[:0], sealed, aad)
	if err != nil || !bytes.Equal(opened, pt) || &opened[0] != &buf[0] {
		t.Fatalf("in-place Decrypt: %q, %v", opened, err)
	}

	// AAD living in dst's spare capacity.
	store := make([]byte, 0, 512)
	aadIn := append(store[30:30], "aad in capacity"...)
	ct3 := mustEncrypt(t, c, store, pt, aadIn)
	if got, err := c.Decrypt(nil, ct3, []byte("aad in capacity")); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("AAD overlapping dst: %v", err)
	}

	// An empty plaintext appends nothing.
	empty := mustEncrypt(t, c, nil, nil, nil)
	if len(empty) != 40 {
		t.Fatalf("empty message is %d bytes", len(empty))
	}
	got, err := c.Decrypt([]byte("p"), empty, nil)
	if err != nil || string(got) != "p" {
		t.Fatalf("empty message: %q, %v", got, err)
	}
	got, err = c.Decrypt(nil, empty, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty message into nil: %q, %v", got, err)
	}
}

// TestFailedDecryptLeavesNoPlaintext: on failure nothing decrypted is left
// anywhere, not in dst, not in its spare capacity, and an in-place
// ciphertext is left as it was.
func TestFailedDecryptLeavesNoPlaintext(t *testing.T) {
	c := newLocal(t, manualConfig())
	pt := bytes.Repeat([]byte("P"), 100)
	ct := mustEncrypt(t, c, nil, pt, []byte("right"))

	dst := make([]byte, 3, 3+len(pt)+16)
	copy(dst, "abc")
	spare := dst[3:cap(dst)]
	for i := range spare {
		spare[i] = 0xAA
	}
	got, err := c.Decrypt(dst, ct, []byte("wrong"))
	wantStatus(t, "wrong aad", err, ErrAuth)
	if got != nil || string(dst) != "abc" {
		t.Fatalf("failed Decrypt returned %q, dst %q", got, dst)
	}
	for i, b := range spare[:len(pt)] {
		if b != 0 {
			t.Fatalf("spare capacity byte %d is %#x after a failed decrypt, want zeroed", i, b)
		}
	}

	inPlace := bytes.Clone(ct)
	got, err = c.Decrypt(inPlace[:0], inPlace, []byte("wrong"))
	wantStatus(t, "wrong aad in place", err, ErrAuth)
	if got != nil || !bytes.Equal(inPlace, ct) {
		t.Fatal("a failed in-place decrypt changed the ciphertext")
	}
}

func TestClosed(t *testing.T) {
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	ct := mustEncrypt(t, c, nil, []byte("x"), nil)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checkClosed(t, "closed", c, ct)
	if c.Overhead() != 40 {
		t.Fatal("Overhead after Close")
	}

	var zero Context
	checkClosed(t, "zero Context", &zero, ct)
	if err := zero.Close(); err != nil {
		t.Fatalf("zero Context Close: %v", err)
	}
	var nilCtx *Context
	checkClosed(t, "nil *Context", nilCtx, ct)
	if err := nilCtx.Close(); err != nil {
		t.Fatalf("nil Close: %v", err)
	}
}

func checkClosed(t *testing.T, what string, c *Context, ct []byte) {
	t.Helper()
	out, err := c.Encrypt(nil, []byte("x"), nil)
	wantStatus(t, what+" Encrypt", err, ErrClosed)
	if out != nil {
		t.Fatalf("%s Encrypt returned data", what)
	}
	out, err = c.Decrypt(nil, ct, nil)
	wantStatus(t, what+" Decrypt", err, ErrClosed)
	if out != nil {
		t.Fatalf("%s Decrypt returned data", what)
	}
	wantStatus(t, what+" Rotate", c.Rotate(), ErrClosed)
	_, err = c.Epoch()
	wantStatus(t, what+" Epoch", err, ErrClosed)
	_, err = c.SenderID()
	wantStatus(t, what+" SenderID", err, ErrClosed)
}

// TestCleanupReleasesEveryHandle: the cleanup is the only release, of
// closed contexts and of those dropped without Close alike, once each (a
// second release would be a double free and crash the process).
func TestCleanupReleasesEveryHandle(t *testing.T) {
	gc := func() {
		for i := 0; i < 5; i++ {
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
	}
	// Earlier tests' contexts first: collect until no more are released.
	for prev := int64(-1); prev != handlesFreed.Load(); {
		prev = handlesFreed.Load()
		gc()
	}
	before := handlesFreed.Load()
	func() {
		for i := 0; i < 10; i++ {
			c, err := New(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			// Closed, not freed: the library still answers on the handle.
			if h, err := c.Health(); err != nil || h.State != HealthClosed {
				t.Fatalf("Health after Close: %+v, %v", h, err)
			}
		}
		c, err := New(nil)
		if err != nil {
			t.Fatal(err)
		}
		mustEncrypt(t, c, nil, []byte("dropped without Close"), nil)
	}()
	// Cleanups run on their own goroutine after a collection; give them a
	// bounded number of chances.
	for i := 0; i < 200 && handlesFreed.Load()-before < 11; i++ {
		gc()
	}
	if n := handlesFreed.Load() - before; n != 11 {
		t.Fatalf("the cleanup released %d handles, want 11", n)
	}
}

func TestCiphertextLen(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("the AES-GCM limit (2^36 bytes) is beyond a 32-bit int")
	}
	const maxPlaintext = 1<<36 - 32 // AES-GCM's limit for one message
	for _, c := range []struct{ n, want int }{
		{0, 40}, {1, 41}, {1 << 20, 1<<20 + 40}, {maxPlaintext, maxPlaintext + 40}, {maxPlaintext + 1, 0},
	} {
		if got := ciphertextLen(c.n); got != c.want {
			t.Errorf("tinymls_ciphertext_len(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// TestMessageOverUsageBudget: a message whose usage cost (1 + len/16384,
// SPEC.md section 5) exceeds MaxOperations can never be encrypted.
func TestMessageOverUsageBudget(t *testing.T) {
	cfg := manualConfig()
	cfg.MaxOperations = 3
	c := newLocal(t, cfg)
	if _, err := c.Encrypt(nil, make([]byte, 3*16384-1), nil); err != nil {
		t.Fatalf("cost 3 with MaxOperations 3: %v", err)
	}
	out, err := c.Encrypt(nil, make([]byte, 3*16384), nil)
	wantStatus(t, "cost 4 with MaxOperations 3", err, ErrInvalidArgument)
	if out != nil {
		t.Fatal("a failed Encrypt returned data")
	}
	// Usage rotates the key: three cost-1 messages per epoch.
	for i := 0; i < 4; i++ {
		h := parseHeader(t, mustEncrypt(t, c, nil, nil, nil))
		if i == 0 && h.epoch != 1 {
			t.Fatalf("a cost-1 message after a cost-3 one stayed in epoch %d", h.epoch)
		}
		if want := uint64(i % 3); h.seq != want {
			t.Fatalf("message %d: seq %d, want %d", i, h.seq, want)
		}
	}
}

// TestReplayWindow: a foreign sender's sequence number older than the
// window (128 by default) is refused even if it was never seen.
func TestReplayWindow(t *testing.T) {
	secret, id := newGroup(t)
	tx := join(t, secret, id, manualConfig())
	rx := join(t, secret, id, manualConfig())
	cts := make([][]byte, 200)
	for i := range cts {
		cts[i] = mustEncrypt(t, tx, nil, []byte{byte(i)}, nil)
	}
	if _, err := rx.Decrypt(nil, cts[199], nil); err != nil {
		t.Fatal(err)
	}
	_, err := rx.Decrypt(nil, cts[199-128], nil)
	wantStatus(t, "just outside the window", err, ErrReplay)
	_, err = rx.Decrypt(nil, cts[0], nil)
	wantStatus(t, "far outside the window", err, ErrReplay)
	if got, err := rx.Decrypt(nil, cts[199-127], nil); err != nil || got[0] != byte(199-127) {
		t.Fatalf("oldest in the window: %v", err)
	}
	_, err = rx.Decrypt(nil, cts[199-127], nil)
	wantStatus(t, "in the window, seen", err, ErrReplay)

	// ReplayWindow 0 turns the check off.
	cfg := manualConfig()
	cfg.ReplayWindow = 0
	open := join(t, secret, id, cfg)
	for i := 0; i < 2; i++ {
		if _, err := open.Decrypt(nil, cts[5], nil); err != nil {
			t.Fatalf("replay protection off, reading #%d: %v", i, err)
		}
	}
}

// Encrypt and Decrypt into a dst with room allocate nothing: no output
// length on the Go heap, although both may call back into Go (events).
func TestEncryptDecryptDoNotAllocate(t *testing.T) {
	c := newLocal(t, manualConfig())
	pt := pattern(64, 3)
	ct := make([]byte, 0, 64+overhead)
	back := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(200, func() {
		var err error
		if ct, err = c.Encrypt(ct[:0], pt, nil); err != nil {
			t.Fatal(err)
		}
		if back, err = c.Decrypt(back[:0], ct, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Encrypt+Decrypt", allocs)
	}
	if !bytes.Equal(back, pt) {
		t.Fatal("round trip")
	}
}
