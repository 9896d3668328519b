// Command interop is the Go runner of the interop matrix
// (tests/interop/run.py), using the Go binding:
//
//	interop encrypt PLAN SECRET_HEX GROUP_ID OUT
//	interop decrypt PLAN SECRET_HEX GROUP_ID IN
//
// The plan and file formats are those of tests/interop/c/interop.c.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	tinymls "github.com/tinymls/tinymls/bindings/go"
)

const magic = "TMLSIOP1"

type step struct {
	rotate bool
	length int
	seed   uint32
	aad    []byte
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "interop go: "+format+"\n", args...)
	os.Exit(1)
}

func readPlan(path string) []step {
	f, err := os.Open(path)
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()
	var plan []step
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == "rotate" {
			plan = append(plan, step{rotate: true})
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 4 || fields[0] != "msg" {
			fail("bad plan line %q", line)
		}
		n, err1 := strconv.Atoi(fields[1])
		seed, err2 := strconv.ParseUint(fields[2], 10, 32)
		var aad []byte
		var err3 error
		if fields[3] != "-" {
			aad, err3 = hex.DecodeString(fields[3])
		}
		if err := errors.Join(err1, err2, err3); err != nil {
			fail("bad plan line %q: %v", line, err)
		}
		plan = append(plan, step{length: n, seed: uint32(seed), aad: aad})
	}
	if err := sc.Err(); err != nil {
		fail("%v", err)
	}
	// What this runner runs: the cases the matrix promises, or it fails.
	var rotations, empty, mib, withAAD int
	for _, s := range plan {
		switch {
		case s.rotate:
			rotations++
		case s.length == 0:
			empty++
		case s.length >= 1<<20:
			mib++
		}
		if len(s.aad) > 0 {
			withAAD++
		}
	}
	if rotations == 0 || empty == 0 || mib == 0 || withAAD == 0 {
		fail("the plan must have a rotation, an empty message, a 1 MiB one and one with AAD")
	}
	return plan
}

func plaintext(n int, seed uint32) []byte {
	pt := make([]byte, n)
	for j := range pt {
		pt[j] = byte(seed*131 + uint32(j)*7 + uint32(j>>8))
	}
	return pt
}

// headerEpoch is the 48-bit epoch of a v2 header (bytes 2..8).
func headerEpoch(ct []byte) uint64 { return binary.BigEndian.Uint64(ct[0:8]) & (1<<48 - 1) }

func epochOf(ctx *tinymls.Context) uint64 {
	e, err := ctx.Epoch()
	if err != nil {
		fail("Epoch: %v", err)
	}
	return e
}

func main() {
	if len(os.Args) != 6 || (os.Args[1] != "encrypt" && os.Args[1] != "decrypt") {
		fmt.Fprintln(os.Stderr, "usage: interop encrypt|decrypt PLAN SECRET_HEX GROUP_ID FILE")
		os.Exit(2)
	}
	plan := readPlan(os.Args[2])
	secret, err := hex.DecodeString(os.Args[3])
	if err != nil {
		fail("secret: %v", err)
	}
	cfg := tinymls.DefaultConfig()
	// The epoch moves only at the plan's rotations: with RatchetPeriod 0 a
	// shared context counts from epoch 0 and adopts a sender's later epoch
	// (SPEC v2 section 7.3), rather than following the clock.
	cfg.RatchetPeriod = 0
	ctx, err := tinymls.Join(secret, []byte(os.Args[4]), cfg)
	if err != nil {
		fail("Join: %v", err)
	}
	defer ctx.Close()
	if os.Args[1] == "encrypt" {
		encrypt(ctx, plan, os.Args[5])
	} else {
		decrypt(ctx, plan, os.Args[5])
	}
}

func encrypt(ctx *tinymls.Context, plan []step, path string) {
	var out bytes.Buffer
	out.WriteString(magic)
	var epoch uint64
	messages, rotations, total := 0, 0, 0
	for _, s := range plan {
		if s.rotate {
			if err := ctx.Rotate(); err != nil {
				fail("Rotate: %v", err)
			}
			epoch++
			rotations++
			if epochOf(ctx) != epoch {
				fail("Rotate did not move to epoch %d", epoch)
			}
			continue
		}
		ct, err := ctx.Encrypt(nil, plaintext(s.length, s.seed), s.aad)
		if err != nil {
			fail("Encrypt: %v", err)
		}
		if len(ct) != s.length+ctx.Overhead() || headerEpoch(ct) != epoch {
			fail("ciphertext %d: length %d or header epoch %d differs from the plan", messages, len(ct), headerEpoch(ct))
		}
		out.Write(binary.BigEndian.AppendUint32(nil, uint32(len(ct))))
		out.Write(ct)
		messages++
		total += len(ct)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		fail("%v", err)
	}
	fmt.Printf("interop go encrypt: messages=%d rotations=%d bytes=%d\n", messages, rotations, total)
}

func decrypt(ctx *tinymls.Context, plan []step, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	if !bytes.HasPrefix(data, []byte(magic)) {
		fail("%s is not an interop ciphertext file", path)
	}
	r := bytes.NewReader(data[len(magic):])
	type record struct {
		ct, aad []byte
	}
	var records []record
	var epoch uint64
	messages, total, rejected := 0, 0, 0
	for _, s := range plan {
		if s.rotate {
			epoch++
			continue
		}
		var n uint32
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			fail("record %d: %v", messages, err)
		}
		ct := make([]byte, n)
		if _, err := io.ReadFull(r, ct); err != nil {
			fail("record %d: %v", messages, err)
		}
		if len(ct) != s.length+ctx.Overhead() || headerEpoch(ct) != epoch {
			fail("record %d: length %d or header epoch %d differs from the plan", messages, len(ct), headerEpoch(ct))
		}
		if messages == 0 {
			// First, a copy with one bit of its tag flipped: refused, and it
			// does not burn the sequence number.
			bad := append([]byte(nil), ct...)
			bad[len(bad)-1] ^= 1
			if _, err := ctx.Decrypt(nil, bad, s.aad); !errors.Is(err, tinymls.ErrAuth) {
				fail("tampered first record: expected ErrAuth, got %v", err)
			}
			rejected++
		}
		pt, err := ctx.Decrypt(nil, ct, s.aad)
		if err != nil {
			fail("Decrypt record %d: %v", messages, err)
		}
		if !bytes.Equal(pt, plaintext(s.length, s.seed)) {
			fail("record %d: plaintext differs from the plan", messages)
		}
		if epochOf(ctx) != epoch {
			fail("record %d: the context did not follow the sender to epoch %d", messages, epoch)
		}
		records = append(records, record{ct, s.aad})
		messages++
		total += len(pt)
	}
	if r.Len() != 0 {
		fail("%d extra bytes after the last record", r.Len())
	}
	if len(records) == 0 {
		fail("the plan has no message")
	}
	first := records[0]
	if _, err := ctx.Decrypt(nil, first.ct, first.aad); !errors.Is(err, tinymls.ErrReplay) {
		fail("replayed first record: expected ErrReplay, got %v", err)
	}
	rejected++
	fmt.Printf("interop go decrypt: messages=%d epoch=%d bytes=%d rejected=%d\n", messages, epochOf(ctx), total, rejected)
}
