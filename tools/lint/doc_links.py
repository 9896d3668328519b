#!/usr/bin/env python3
"""Checks the relative links of Markdown files: every link target exists,
and a #fragment into a Markdown file names one of its headings (GitHub's
anchors). Also flags references to the shared contract's path outside the
repository (`shared/SPEC.md`, `shared/vectors`): the copy here is
docs/SPEC.md. Code blocks are skipped.

    doc_links.py FILE.md...      (make lint)
"""

from __future__ import annotations

import os
import re
import sys

CODE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+\s+(.*?)\s*$", re.M)
STALE = re.compile(r"(?<![\w/])(?:\.\./)?shared/(?:SPEC\.md|vectors)")


def anchors(path: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'."""
    with open(path, encoding="utf-8") as f:
        text = CODE.sub("", f.read())
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in HEADING.findall(text)}


def check(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    problems = [f"{path}: stale reference {m.group(0)!r} (the contract is docs/SPEC.md)"
                for m in STALE.finditer(raw)]
    for m in LINK.finditer(CODE.sub("", raw)):
        target = m.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:, ...
        file, _, fragment = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        if not os.path.exists(dest):
            problems.append(f"{path}: link to a missing file: {target}")
        elif fragment and dest.endswith(".md") and fragment not in anchors(dest):
            problems.append(f"{path}: no heading for the anchor: {target}")
    return problems


def main() -> int:
    problems = [p for path in sys.argv[1:] for p in check(path)]
    for p in problems:
        print(p)
    print(f"doc links: {len(sys.argv) - 1} files, " + (f"{len(problems)} problems" if problems else "every link resolves"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
