"""The quick start of bindings/python/README.md runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start() -> str:
    section = README.read_text(encoding="utf-8").split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "README.md: expected one python block under '## Quick start'"
    return blocks[0]


def test_readme_quick_start_runs() -> None:
    # A fresh interpreter, as a user pasting it into a file would run it.
    before_ms = time.time_ns() // 1_000_000
    p = subprocess.run(
        [sys.executable, "-c", quick_start()], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    after_ms = time.time_ns() // 1_000_000
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "refused: REPLAY status 7"
    m = re.fullmatch(r"alice is at epoch (\d+) with sender id 0x[0-9a-f]+", lines[1])
    assert m is not None, lines[1]
    # The default shared context numbers epochs by the wall clock (100 ms each).
    assert before_ms // 100 <= int(m.group(1)) <= after_ms // 100
    assert len(lines) == 2
