#!/usr/bin/env python3
"""Checks the Python wheel as a user gets it (make test-wheel).

    check_wheel.py [--python PYTHON] [--repo DIR] WHEEL

WHEEL is the wheel after `auditwheel repair`. Checked:

* its tag: py3-none-manylinux_*: tied to a platform (it carries a native
  library), never none-any;
* tinymls/libtinymls.so is in it and stripped (`readelf -S`: no .debug_*
  section); its size is printed;
* the dist-info holds LICENSE and THIRD_PARTY_LICENSES.md, the repository's own;
* in a new venv under a fresh temporary directory (outside the checkout),
  with the wheel installed from the file alone (no index, so nothing is
  built), with TINYMLS_LIBRARY, TINYMLS and PYTHONPATH unset, and from that
  directory: `import tinymls` loads the library inside the package and
  reports the wheel's version, the Python part of docs/QUICKSTART.md runs
  and prints what the page shows, and the quick start of
  bindings/python/README.md runs.

The quick start is the page's own text, parsed by tests/docs/check_quickstart.py:
its Python part from the first saved file on (the program, the command that
runs it, the expected output) runs as written, in a directory that holds the
`.venv` the page's first block would have made; that first block (make the
directory and the venv, `pip install` the package from the checkout) is
replaced by installing the wheel, and must be such a block.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile

from packaging.utils import parse_wheel_filename

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "docs"))
import check_quickstart as qs  # noqa: E402

LIBRARY = "tinymls/libtinymls.so"


def fail(msg: str) -> None:
    print(f"FAIL {msg}")
    sys.exit(1)


def check_tag(wheel: str) -> None:
    name, version, _, tags = parse_wheel_filename(os.path.basename(wheel))
    shown = sorted(str(t) for t in tags)
    if any(t.abi == "none" and t.platform == "any" for t in tags):
        fail(f"{wheel}: tagged {shown}: a pure wheel, but it carries a native library")
    if not all(t.interpreter == "py3" and t.abi == "none" and t.platform.startswith("manylinux_") for t in tags):
        fail(f"{wheel}: tagged {shown}, expected py3-none-manylinux_*")
    print(f"ok   tag: {' '.join(shown)} ({name} {version})")


def check_contents(wheel: str, repo: str, tmp: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        if LIBRARY not in names:
            fail(f"{wheel}: no {LIBRARY} in it")
        so = z.extract(LIBRARY, os.path.join(tmp, "unpacked"))
        licenses = []
        for wanted in ("LICENSE", "THIRD_PARTY_LICENSES.md"):
            found = [n for n in names if n.split("/")[0].endswith(".dist-info") and n.endswith("/licenses/" + wanted)]
            if len(found) != 1:
                fail(f"{wheel}: expected one .dist-info/licenses/{wanted}, found {found}")
            with open(os.path.join(repo, wanted), "rb") as f:
                if z.read(found[0]) != f.read():
                    fail(f"{wheel}: {found[0]} is not the repository's {wanted}")
            licenses.append(found[0])
    sections = subprocess.run(["readelf", "-S", "-W", so], capture_output=True, text=True, check=True).stdout
    debug = sorted({w for w in sections.split() if w.startswith(".debug")})
    if debug:
        fail(f"{wheel}: {LIBRARY} is not stripped: it has {', '.join(debug)}")
    print(f"ok   {LIBRARY}: {os.path.getsize(so)} bytes, no .debug_* section; {' and '.join(licenses)} are the repository's")


def quickstart_blocks(path: str) -> list[qs.Block]:
    parts = [p for p in qs.parse(path, None) if p.title.startswith("Python")]
    if len(parts) != 1:
        fail(f"{path}: expected one Python section, found {len(parts)}")
    blocks = parts[0].blocks
    first_file = next((i for i, b in enumerate(blocks) if b.kind == "file"), None)
    if first_file is None or not any(b.kind == "expect" for b in blocks[first_file:]):
        fail(f"{path} [Python]: no saved program followed by its expected output")
    install = [b for b in blocks[:first_file] if b.kind == "run"]
    if not (len(install) == 1 and "python3 -m venv .venv" in install[0].text
            and ".venv/bin/pip install" in install[0].text and "$TINYMLS/bindings/python" in install[0].text):
        fail(f"{path} [Python]: the part before the program is not the one block that makes .venv and "
             "pip-installs $TINYMLS/bindings/python, which this check replaces by installing the wheel")
    return blocks[first_file:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default="python3", help="the interpreter the venv is made from")
    ap.add_argument("--repo", default=os.path.abspath(os.path.join(HERE, "..", "..")))
    ap.add_argument("wheel")
    args = ap.parse_args()
    repo = os.path.realpath(args.repo)
    wheel = os.path.abspath(args.wheel)
    quickstart = os.path.join(repo, "docs", "QUICKSTART.md")
    readme = os.path.join(repo, "bindings", "python", "README.md")

    check_tag(wheel)
    blocks = quickstart_blocks(quickstart)
    readme_code = [b.text for part in qs.parse(readme, "Quick start", excerpts=True) for b in part.blocks]
    if not readme_code:
        fail(f"{readme}: no python block under 'Quick start'")

    with tempfile.TemporaryDirectory(prefix="tinymls-wheel-") as tmp:
        tmp = os.path.realpath(tmp)
        if os.path.commonpath([tmp, repo]) == repo:
            fail(f"the temporary directory {tmp} is inside the checkout")
        check_contents(wheel, repo, tmp)

        home = os.path.join(tmp, "hello-py")
        outdir = os.path.join(tmp, "out")
        os.makedirs(home)
        os.makedirs(outdir)
        env = {k: v for k, v in os.environ.items()
               if k not in ("TINYMLS", "TINYMLS_LIBRARY", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
                            "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        venv_python = os.path.join(home, ".venv", "bin", "python")
        subprocess.run([args.python, "-m", "venv", ".venv"], cwd=home, env=env, check=True)
        subprocess.run([venv_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-index", wheel], cwd=home, env=env, check=True)

        probe = "import tinymls; print(tinymls.library_path()); print(tinymls.version())"
        out = subprocess.run([venv_python, "-c", probe], cwd=home, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            fail(f"import tinymls in the new venv:\n{out.stderr}")
        loaded, version = out.stdout.split()
        if os.path.commonpath([os.path.realpath(loaded), os.path.join(home, ".venv")]) != os.path.join(home, ".venv") \
                or not loaded.endswith("/site-packages/tinymls/libtinymls.so"):
            fail(f"import tinymls loaded {loaded}, not the library inside the installed package")
        wheel_version = str(parse_wheel_filename(os.path.basename(wheel))[1])
        if version != wheel_version:
            fail(f"the installed library says version {version}, the wheel is {wheel_version}")
        print(f"ok   import tinymls with no setting: library {version} from the package ({loaded})")

        if qs.run_part(f"{quickstart} [Python]", blocks, home, outdir, env):
            sys.exit(1)
        print(f"ok   {quickstart} [Python]: the program runs from the wheel, output as shown")
        for code in readme_code:
            p = subprocess.run([venv_python, "-c", code], cwd=home, env=env, capture_output=True, text=True,
                               timeout=120)
            if p.returncode != 0:
                fail(f"{readme} quick start (from the wheel):\n{p.stderr[-4000:]}")
        print(f"ok   {readme} quick start: runs from the wheel")
    print(f"wheel: {os.path.basename(wheel)} checked")


if __name__ == "__main__":
    main()
