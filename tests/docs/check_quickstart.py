#!/usr/bin/env python3
"""Runs the quick starts of docs/QUICKSTART.md as a new user would, and checks
that the README's short examples are excerpts of the programs it runs.

Each FILE is checked whole (or only its --section): it is split into a setup
part and one part per language (a heading "C", "Go" or "Python"). Each
language part runs in a fresh bash session, in a fresh empty directory that
holds only `tinymls`, a link to this checkout, after the setup part --
exactly what a user pastes, nothing else. Within a part, in document order:

* a ```sh block is run as it is (its standard output is captured);
* a code block preceded by "Save as `NAME`:" is written to NAME;
* a ```text block is the expected output of the last ```sh block: it must
  match exactly.

Any other code block in the region is an error (so nothing shown goes
unchecked), as is a failing command or a different output.

An --excerpts file (README.md: its "## Examples" section, or FILE=HEADING)
is not run: every code block in its region must be a ```c, ```go or
```python block that is an excerpt of a file of the same language saved by
one of the FILEs. An excerpt is made of lines of that file, in order; a line
that is only "...", "/* ... */", "// ..." or "# ..." skips any number of
lines, and the lines between two skips are consecutive in the file (compared
after removing their common indentation). So the short examples can only
show code that the full quick start compiles and runs.

    check_quickstart.py [--repo DIR] [--section FILE=HEADING]
                        [--excerpts FILE[=HEADING]] FILE...      (make test-quickstart)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field

FENCE = re.compile(r"^```(\w*)\s*$")
HEADING = re.compile(r"^(#+)\s+(.*?)\s*$")
LANG_HEADING = re.compile(r"^(C|Go|Python)\b")
SAVE_AS = re.compile(r"[Ss]ave (?:it |this )?as `([^`]+)`")
SHELLS = {"sh", "bash", "shell"}
EXCERPT_LANGS = {"c", "go", "python"}
ELISIONS = {"...", "/* ... */", "// ...", "# ..."}


@dataclass
class Block:
    kind: str  # "run", "file", "expect", "excerpt"
    text: str
    line: int
    name: str = ""
    lang: str = ""


@dataclass
class Part:
    title: str
    blocks: list[Block] = field(default_factory=list)


def parse(path: str, section: str | None, excerpts: bool = False) -> list[Part]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    parts = [Part("setup")]
    in_region = section is None
    region_level = 0
    prose: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        h = HEADING.match(line)
        if h and not line.startswith("#!"):
            level, title = len(h.group(1)), h.group(2)
            if section is not None:
                if title.lower() == section.lower():
                    in_region, region_level = True, level
                    i += 1
                    continue
                if in_region and level <= region_level:
                    break
            if in_region and LANG_HEADING.match(title):
                parts.append(Part(title))
            prose = []
            i += 1
            continue
        m = FENCE.match(line)
        if not m:
            if line.strip():
                prose.append(line)
            i += 1
            continue
        lang, start = m.group(1), i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            sys.exit(f"{path}:{i + 1}: unterminated code block")
        text = "\n".join(lines[start:j]) + "\n"
        if in_region and excerpts:
            if lang not in EXCERPT_LANGS:
                sys.exit(f"{path}:{i + 1}: a ```{lang} block among the excerpts (only "
                         + ", ".join(f"```{x}" for x in sorted(EXCERPT_LANGS)) + ")")
            parts[-1].blocks.append(Block("excerpt", text, i + 1, lang=lang))
        elif in_region:
            save = SAVE_AS.search(prose[-1]) if prose else None
            if save:
                parts[-1].blocks.append(Block("file", text, i + 1, save.group(1), lang))
            elif lang in SHELLS:
                parts[-1].blocks.append(Block("run", text, i + 1))
            elif lang == "text":
                parts[-1].blocks.append(Block("expect", text, i + 1))
            else:
                sys.exit(f"{path}:{i + 1}: a ```{lang} block that is neither run, saved (\"Save as `NAME`:\") "
                         "nor an expected output (```text)")
        prose = []
        i = j + 1
    if section is not None and not in_region:
        sys.exit(f"{path}: no section {section!r}")
    return parts


def excerpt_of(excerpt: str, source: str) -> bool:
    """Whether excerpt is made of source's lines in order, with elision lines skipping any number."""
    chunks: list[list[str]] = [[]]
    for line in excerpt.splitlines():
        if line.strip() in ELISIONS:
            chunks.append([])
        else:
            chunks[-1].append(line)
    lines = source.splitlines()
    pos = 0
    for chunk in chunks:
        if not chunk:
            continue
        want = textwrap.dedent("\n".join(chunk))
        for p in range(pos, len(lines) - len(chunk) + 1):
            if textwrap.dedent("\n".join(lines[p:p + len(chunk)])) == want:
                pos = p + len(chunk)
                break
        else:
            return False
    return any(chunks)


def check_excerpts(path: str, section: str, sources: list[tuple[str, Block]]) -> int:
    blocks = [b for part in parse(path, section, excerpts=True) for b in part.blocks]
    if not blocks:
        sys.exit(f"{path}: no code block in section {section!r}")
    for b in blocks:
        found = [f"{src}: {f.name}" for src, f in sources if f.lang == b.lang and excerpt_of(b.text, f.text)]
        if not found:
            names = ", ".join(f"{src}: {f.name}" for src, f in sources if f.lang == b.lang) or "none"
            print(f"FAIL {path}:{b.line}: this ```{b.lang} block is not an excerpt of a file the quick start "
                  f"saves and runs (```{b.lang} files: {names}).")
            return 1
        print(f"ok   {path}:{b.line}: an excerpt of {found[0]}")
    return 0


def script(blocks: list[Block], outdir: str, first: int) -> tuple[str, dict[int, int]]:
    """A bash script running the blocks in this shell; returns it and block index -> output file number."""
    lines = ["set -eo pipefail"]
    outputs: dict[int, int] = {}
    for n, b in enumerate(blocks, start=first):
        if b.kind == "file":
            if "__QS_EOF__" in b.text:
                sys.exit("a saved file contains the heredoc marker")
            lines.append(f"cat > '{b.name}' <<'__QS_EOF__'\n{b.text}__QS_EOF__")
        elif b.kind == "run":
            lines.append(f"echo '>>> block {n}' >&2")
            lines.append(f"{{\n{b.text}}} > '{outdir}/{n}'")
            outputs[n] = n
    return "\n".join(lines) + "\n", outputs


def norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def run_part(where: str, blocks: list[Block], cwd: str, outdir: str, env: dict[str, str]) -> int:
    """Runs blocks in one bash session in cwd (saving files, running commands into outdir) and
    compares each ```text block with the output of the command block before it; 0 if all match."""
    text, _ = script(blocks, outdir, 0)
    p = subprocess.run(["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    last_run = -1
    for n, b in enumerate(blocks):
        if b.kind == "run":
            last_run = n
        elif b.kind == "expect" and p.returncode == 0:
            if last_run < 0:
                sys.exit(f"{where}:{b.line}: expected output with no command before it")
            with open(os.path.join(outdir, str(last_run)), encoding="utf-8", errors="replace") as f:
                got = f.read()
            if norm(got) != norm(b.text):
                print(f"FAIL {where}:{b.line}: the output differs.\n--- shown:\n{b.text}--- got:\n{got}")
                return 1
    if p.returncode != 0:
        print(f"FAIL {where}: a command failed (exit {p.returncode}).\n--- stderr (tail):\n{p.stderr[-4000:]}")
        return 1
    return 0


def check(path: str, section: str | None, repo: str) -> int:
    parts = parse(path, section)
    setup, langs = parts[0], parts[1:]
    if not langs:
        sys.exit(f"{path}: no C, Go or Python section")
    for part in langs:
        blocks = setup.blocks + part.blocks
        if not any(b.kind == "expect" for b in part.blocks):
            sys.exit(f"{path}: section {part.title!r} shows no expected output")
        with tempfile.TemporaryDirectory(prefix="tinymls-quickstart-") as tmp:
            home = os.path.join(tmp, "user")
            outdir = os.path.join(tmp, "out")
            os.makedirs(home)
            os.makedirs(outdir)
            os.symlink(repo, os.path.join(home, "tinymls"))
            env = {k: v for k, v in os.environ.items() if k not in ("TINYMLS", "TINYMLS_LIBRARY", "MAKEFLAGS",
                                                                      "MAKELEVEL", "MFLAGS")}
            user_home = env.get("HOME", "")
            if not (user_home and os.path.isdir(user_home) and os.access(user_home, os.W_OK)) and "GOCACHE" not in env:
                # As bindings/go/Makefile does: Go needs a cache directory.
                env["GOCACHE"] = os.path.join(repo, "build", "go", "cache")
            if run_part(f"{path} [{part.title}]", blocks, home, outdir, env):
                return 1
        ran = sum(1 for b in blocks if b.kind == "run")
        print(f"ok   {path} [{part.title}]: {ran} command blocks, {sum(b.kind == 'file' for b in blocks)} files, "
              f"output as shown")
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
    ap.add_argument("--section", action="append", default=[],
                    help="FILE=HEADING: run only that section of FILE")
    ap.add_argument("--excerpts", action="append", default=[],
                    help="FILE[=HEADING]: check that the code blocks of that section (default: Examples) are "
                         "excerpts of the files the FILEs save and run")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    sections: dict[str, str] = {}
    for s in args.section:
        f, _, h = s.partition("=")
        sections[os.path.basename(f)] = h
    if not shutil.which("bash"):
        sys.exit("bash is needed")
    sources = [(path, b) for path in args.files
               for part in parse(path, sections.get(os.path.basename(path)))
               for b in part.blocks if b.kind == "file"]
    for e in args.excerpts:
        path, _, heading = e.partition("=")
        if check_excerpts(path, heading or "Examples", sources):
            sys.exit(1)
    for path in args.files:
        if check(path, sections.get(os.path.basename(path)), os.path.abspath(args.repo)):
            sys.exit(1)
    print("quick start: every block of " + ", ".join(args.files) + " runs as written"
          + "".join(f"; the examples of {e.partition('=')[0]} are excerpts of it" for e in args.excerpts))


if __name__ == "__main__":
    main()
