"""The quick start of bindings/python/README.md runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start() -> str:
    section = README.read_text(encoding="utf-8").split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "README.md: expected one python block under '## Quick start'"
    return blocks[0]


def test_readme_quick_start_runs() -> None:
    # A fresh interpreter, as a user pasting it into a file would run it.
    p = subprocess.run(
        [sys.executable, "-c", quick_start()], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "refused: sequence number already seen or outside the replay window status 7"
    assert re.fullmatch(r"alice is at epoch 1 with sender id 0x[0-9a-f]+", lines[1]), lines[1]
    assert len(lines) == 2
