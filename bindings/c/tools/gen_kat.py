#!/usr/bin/env python3
"""Turn tests/vectors/tinymls_kat.json into a C header for test_kat.c.

C has no JSON parser in its standard library, so the Makefile runs this
generator (Python 3, standard library only) before compiling the known-answer
test. The header it writes holds, for the `decrypt_sequence` of SPEC.md
section 10 (v2), each step's ciphertext, AAD, either the expected plaintext or
the expected status (as the enumerator TINYMLS_ERR_<NAME>, so that a name the
C header does not know fails the build), and, where the step has one, the
`current_epoch` the context must report after it (a 48-bit number). The step
count is taken from the file (KAT_STEP_COUNT); test_kat.c also compares it
with the literal it expects.

Usage: gen_kat.py INPUT.json OUTPUT.h
"""

import json
import os
import re
import sys
import tempfile

STEP_KEYS = {"name", "ciphertext", "aad", "plaintext", "error", "current_epoch"}
EPOCH_MAX = (1 << 48) - 1
NAME_RE = re.compile(r"^[A-Z][A-Z_]*$")


def fail(msg):
    sys.stderr.write("gen_kat.py: %s\n" % msg)
    sys.exit(1)


def unhex(value, what):
    if not isinstance(value, str):
        fail("%s: expected a hex string" % what)
    try:
        return bytes.fromhex(value)
    except ValueError:
        fail("%s: not valid hex" % what)
    return b""  # unreachable


def c_string(text):
    """A C string literal (ASCII; anything else escaped in octal)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "\\\"":
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F and ch != "?":  # '?' avoids trigraphs
            out.append(ch)
        elif code < 0x100:
            out.append("\\%03o" % code)
        else:
            fail("non-Latin-1 character in a step name: %r" % text)
    return '"' + "".join(out) + '"'


def c_bytes(name, data):
    """A static byte array, or None for an empty string (C has no zero-length arrays)."""
    if not data:
        return None
    lines = []
    for i in range(0, len(data), 12):
        lines.append("    " + ", ".join("0x%02x" % b for b in data[i:i + 12]) + ",")
    return "static const uint8_t %s[%d] = {\n%s\n};\n" % (name, len(data), "\n".join(lines))


def main(argv):
    if len(argv) != 3:
        fail("usage: gen_kat.py INPUT.json OUTPUT.h")
    src, dst = argv[1], argv[2]
    with open(src, "r", encoding="utf-8") as f:
        doc = json.load(f)

    for key in ("group_secret", "group_id", "decrypt_sequence"):
        if key not in doc:
            fail("missing top-level key %r" % key)
    secret = unhex(doc["group_secret"], "group_secret")
    group_id = unhex(doc["group_id"], "group_id")
    steps = doc["decrypt_sequence"]
    if not isinstance(steps, list) or not steps:
        fail("decrypt_sequence must be a non-empty list")

    arrays = []
    rows = []
    max_pt = 0
    epoch_steps = 0
    for i, step in enumerate(steps):
        where = "decrypt_sequence[%d]" % i
        if not isinstance(step, dict):
            fail("%s: not an object" % where)
        unknown = set(step) - STEP_KEYS
        if unknown:
            fail("%s: unknown keys %s" % (where, sorted(unknown)))
        if ("plaintext" in step) == ("error" in step):
            fail("%s: needs exactly one of 'plaintext' and 'error'" % where)
        name = step.get("name", "step %d" % i)
        ct = unhex(step.get("ciphertext"), where + ".ciphertext")
        aad = unhex(step.get("aad", ""), where + ".aad")
        ct_ref = "NULL"
        aad_ref = "NULL"
        pt_ref = "NULL"
        pt_len = 0
        arr = c_bytes("kat_step%d_ct" % i, ct)
        if arr:
            arrays.append(arr)
            ct_ref = "kat_step%d_ct" % i
        arr = c_bytes("kat_step%d_aad" % i, aad)
        if arr:
            arrays.append(arr)
            aad_ref = "kat_step%d_aad" % i
        if "plaintext" in step:
            pt = unhex(step["plaintext"], where + ".plaintext")
            pt_len = len(pt)
            max_pt = max(max_pt, pt_len)
            arr = c_bytes("kat_step%d_pt" % i, pt)
            if arr:
                arrays.append(arr)
                pt_ref = "kat_step%d_pt" % i
            status, status_name = "TINYMLS_OK", "OK"
        else:
            err = step["error"]
            if not isinstance(err, str) or not NAME_RE.match(err):
                fail("%s: bad status name %r" % (where, err))
            status, status_name = "TINYMLS_ERR_" + err, err
        has_epoch = "current_epoch" in step
        epoch = step.get("current_epoch", 0)
        # bool is an int in Python: refuse it, as any non-integer.
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= EPOCH_MAX:
            fail("%s: current_epoch must be an integer in 0..2^48-1" % where)
        if has_epoch:
            epoch_steps += 1
        rows.append("    {%s, %s, %d, %s, %d, %s, %d, %s, %s, %d, UINT64_C(%d)}," % (
            c_string(name), ct_ref, len(ct), aad_ref, len(aad), pt_ref, pt_len,
            status, c_string(status_name), 1 if has_epoch else 0, epoch))

    out = []
    out.append("/* Generated by bindings/c/tools/gen_kat.py from %s. Do not edit. */\n"
               % os.path.basename(src))
    out.append("#ifndef TINYMLS_KAT_VECTORS_H\n#define TINYMLS_KAT_VECTORS_H\n\n")
    out.append("#include <stddef.h>\n#include <stdint.h>\n\n#include \"tinymls.h\"\n\n")
    out.append("/* Number of decrypt_sequence steps in the JSON file. */\n")
    out.append("#define KAT_STEP_COUNT %d\n" % len(steps))
    out.append("/* Steps that carry a current_epoch to check. */\n")
    out.append("#define KAT_EPOCH_CHECK_COUNT %d\n" % epoch_steps)
    out.append("/* Longest expected plaintext (sizes the output buffer). */\n")
    out.append("#define KAT_MAX_PLAINTEXT_LEN %d\n\n" % max_pt)
    out.append("struct kat_step {\n"
               "    const char *name;\n"
               "    const uint8_t *ct;\n    size_t ct_len;\n"
               "    const uint8_t *aad;\n    size_t aad_len;\n"
               "    const uint8_t *pt; /* expected plaintext (status TINYMLS_OK) */\n"
               "    size_t pt_len;\n"
               "    tinymls_status status; /* expected status */\n"
               "    const char *status_name; /* as written in the JSON file */\n"
               "    int has_current_epoch; /* the step carries current_epoch */\n"
               "    uint64_t current_epoch; /* tinymls_context_epoch after the step */\n"
               "};\n\n")
    out.append(c_bytes("kat_group_secret", secret) or fail("empty group_secret"))
    out.append(c_bytes("kat_group_id", group_id) or fail("empty group_id"))
    out.append("\n")
    out.extend(arrays)
    out.append("\nstatic const struct kat_step kat_steps[KAT_STEP_COUNT] = {\n")
    out.append("\n".join(rows) + "\n};\n\n#endif /* TINYMLS_KAT_VECTORS_H */\n")

    out_dir = os.path.dirname(os.path.abspath(dst))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".kat_vectors.")
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write("".join(out))
    os.replace(tmp, dst)


if __name__ == "__main__":
    main(sys.argv)
