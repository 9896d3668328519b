package main

// What travels between the processes of the demo, shared by the replicas,
// the Go consumer and (reimplemented) the C and Python consumers.
//
// On a Unix socket, from a replica to a consumer, a stream of frames:
//
//	kind (1 byte) | length (u32, big-endian) | a TinyMLS ciphertext (length bytes)
//
// A stream socket delivers every byte written, in order, or reports an
// error to the writer: the transport loses nothing, so a message that does
// not arrive intact is the demo's (or the library's) fault, never the
// network's.
//
// The plaintext of a data message ('D') is one text line and a body:
//
//	"<sender> <incarnation> <seq> <body length> <crc32 of body, 8 hex digits>\n" || body
//
// sender is the replica's name ("busy", "quiet"), incarnation counts its
// process starts (1, then 2 after the restart), seq counts the incarnation's
// messages from 1, and the body is random bytes of random length. With
// them a consumer detects a lost message (a gap in seq), a duplicate (a seq
// seen before), and a misread (a line it cannot parse, a body of the wrong
// length or checksum) on its own, independently of what the AEAD checks.
// Every message binds the AAD "orders-v1" (the application's message type).

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
)

// Frame kinds.
const (
	frameData     = 'D' // a genuine message: must decrypt and check out
	frameTampered = 'T' // deliberately tampered: must be rejected with AUTH
	frameReplay   = 'R' // deliberately replayed: must be rejected with REPLAY
)

// groupID names the group every process joins; with the group secret it
// determines every epoch key (SPEC v2 section 3).
const groupID = "demo/orders"

// aad is bound to every message: the application's message type.
var aad = []byte("orders-v1")

// maxFrame bounds a frame a consumer accepts (the demo's are < 400 bytes).
const maxFrame = 1 << 20

// encodeFrame returns a frame of kind carrying ct, ready for one Write.
func encodeFrame(kind byte, ct []byte) []byte {
	f := make([]byte, 5, 5+len(ct))
	f[0] = kind
	binary.BigEndian.PutUint32(f[1:5], uint32(len(ct)))
	return append(f, ct...)
}

// errCut is readFrame's error for a stream that ends inside a frame: its
// writer died (or was killed) in the middle of writing it.
var errCut = errors.New("the stream ended inside a frame")

// readFrame reads one frame. It returns io.EOF at a clean end of stream.
func readFrame(r *bufio.Reader) (kind byte, ct []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errCut
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("a frame of %d bytes", n)
	}
	ct = make([]byte, n)
	if _, err := io.ReadFull(r, ct); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errCut
		}
		return 0, nil, err
	}
	return hdr[0], ct, nil
}

// headerEpoch is a ciphertext's epoch: the header's u48 at bytes 2..8
// (SPEC v2 section 4). The header is public; reading it needs no key.
func headerEpoch(ct []byte) uint64 {
	if len(ct) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(ct[0:8]) & (1<<48 - 1)
}

// message is the content of a data message.
type message struct {
	sender      string
	incarnation int
	seq         uint64
	body        []byte
}

// encode returns the plaintext of m.
func (m message) encode() []byte {
	line := fmt.Sprintf("%s %d %d %d %08x\n", m.sender, m.incarnation, m.seq, len(m.body), crc32.ChecksumIEEE(m.body))
	return append([]byte(line), m.body...)
}

// parseMessage checks a decrypted plaintext and returns its content, or an
// error saying why it is a misread.
func parseMessage(pt []byte) (message, error) {
	line, body, ok := strings.Cut(string(pt), "\n")
	if !ok {
		return message{}, errors.New("no header line")
	}
	var m message
	var n int
	var crc uint32
	if k, err := fmt.Sscanf(line, "%s %d %d %d %x", &m.sender, &m.incarnation, &m.seq, &n, &crc); err != nil || k != 5 {
		return message{}, fmt.Errorf("unreadable header line %.60q", line)
	}
	m.body = []byte(body)
	if len(m.body) != n {
		return message{}, fmt.Errorf("%s#%d seq %d: body of %d bytes, the header says %d", m.sender, m.incarnation, m.seq, len(m.body), n)
	}
	if crc32.ChecksumIEEE(m.body) != crc {
		return message{}, fmt.Errorf("%s#%d seq %d: body checksum mismatch", m.sender, m.incarnation, m.seq)
	}
	return m, nil
}

// readSecret reads the hex group secret, the first line of standard input.
// Children get it there, never on a command line (which any user may read
// in /proc), and nobody prints it.
func readSecret(in *bufio.Reader) ([]byte, error) {
	line, err := in.ReadSlice('\n') // a view of in's buffer, wiped below
	defer clear(line)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	hexSecret := bytes.TrimSpace(line)
	secret := make([]byte, hex.DecodedLen(len(hexSecret)))
	if _, err := hex.Decode(secret, hexSecret); err != nil {
		return nil, errors.New("the group secret on standard input is not hex")
	}
	return secret, nil
}

// say prints one line of the process's report to the orchestrator. Each line
// is one write(2), so a line is whole even if the process is killed.
func say(format string, a ...any) {
	_, _ = os.Stdout.WriteString(fmt.Sprintf(format, a...) + "\n")
}
