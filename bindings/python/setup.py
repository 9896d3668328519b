"""Builds the tinymls wheel: the ctypes package plus libtinymls.so, stripped.

setuptools-rust builds the Rust crate (a plain cdylib, ``Binding.NoBinding``)
and puts the library in the package; everything else is in pyproject.toml.
Four things are set here because a declarative file cannot say them:

* Where the crate is. In a checkout, Cargo.toml is two levels up; an sdist
  carries the crate in ``rust/`` (written there by ``cargo package``, see
  ``sdist_with_crate``), so that a wheel builds from the sdist alone.
* Where cargo builds, for a checkout: ``target/wheel`` unless
  ``CARGO_TARGET_DIR`` says otherwise. setuptools-rust runs
  ``cargo rustc --crate-type cdylib``, which in ``target/release`` would
  rebuild over ``make lib``'s build of all three crate types each time.
* The file name: ``tinymls/libtinymls.so``, the name ``_ffi.py`` looks for,
  instead of an extension module's ``libtinymls.cpython-311-x86_64-linux-gnu.so``.
* The wheel tag: ``py3-none-<platform>``. The library is loaded with ctypes:
  it ties the wheel to a platform, not to a Python version or ABI.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist
from setuptools_rust import Binding, RustExtension, Strip

HERE = Path(__file__).resolve().parent
SDIST_CRATE = HERE / "rust"
CHECKOUT = HERE.parent.parent
LIBRARY = "libtinymls"


def manifest() -> Path:
    if (SDIST_CRATE / "Cargo.toml").is_file():
        return SDIST_CRATE / "Cargo.toml"
    path = CHECKOUT / "Cargo.toml"
    if not path.is_file():
        raise SystemExit(f"tinymls: no Rust crate at {SDIST_CRATE} or {CHECKOUT}")
    os.environ.setdefault("CARGO_TARGET_DIR", str(CHECKOUT / "target" / "wheel"))
    return path


class build_ext_plain_library(build_ext):
    """The library keeps its own name: ``tinymls/libtinymls.so``."""

    def get_ext_filename(self, fullname: str) -> str:
        if fullname.split(".")[-1] == LIBRARY:
            return os.path.join(*fullname.split(".")[:-1], LIBRARY + ".so")
        return str(super().get_ext_filename(fullname))


class bdist_wheel_ctypes(bdist_wheel):
    """``py3-none-<platform>``: any Python 3, this platform's library."""

    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform


class sdist_with_crate(sdist):
    """Puts the crate into the sdist's ``rust/`` as ``cargo package`` packs it
    (Cargo.toml's ``include`` list, Cargo.lock, the manifest normalized)."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        dest = Path(base_dir) / "rust"
        if (SDIST_CRATE / "Cargo.toml").is_file():  # an sdist of an sdist
            shutil.copytree(SDIST_CRATE, dest, ignore=shutil.ignore_patterns("target"))
            return
        with tempfile.TemporaryDirectory(prefix="tinymls-package-") as tmp:
            subprocess.run(
                ["cargo", "package", "--quiet", "--no-verify", "--allow-dirty", "--locked",
                 "--manifest-path", str(manifest()), "--target-dir", tmp],
                check=True,
            )
            (crate,) = (Path(tmp) / "package").glob("*.crate")
            with tarfile.open(crate) as tar:
                members = tar.getmembers()
                for m in members:  # drop the top directory, tinymls-<version>/
                    m.name = m.name.split("/", 1)[1] if "/" in m.name else ""
                    # cargo package dates every file 2006-07-24 (a reproducible
                    # .crate); cargo decides what to rebuild by mtime, so a
                    # target dir shared by wheel builds from successive sdists
                    # would keep a stale library. Give each file its source's date.
                    source = CHECKOUT / m.name.removesuffix(".orig")
                    m.mtime = math.ceil(source.stat().st_mtime if source.is_file() else time.time())
                entries = [m for m in members if m.name]
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12
                    tar.extractall(dest, members=entries, filter="data")
                else:
                    tar.extractall(dest, members=entries)


# TINYMLS_FIPS=1 builds the library against the AWS-LC FIPS module (the
# crate's `fips` feature, as `make lib FIPS=1`; needs Go, CMake and a C
# compiler, see docs/FIPS.md). The package then reports fips_mode() True.
FIPS = os.environ.get("TINYMLS_FIPS", "") not in ("", "0")

setup(
    rust_extensions=[
        RustExtension(
            f"tinymls.{LIBRARY}",
            path=str(manifest()),
            binding=Binding.NoBinding,
            strip=Strip.All,
            cargo_manifest_args=["--locked"],
            features=["fips"] if FIPS else [],
            args=["--no-default-features"] if FIPS else [],
        )
    ],
    cmdclass={"build_ext": build_ext_plain_library, "bdist_wheel": bdist_wheel_ctypes, "sdist": sdist_with_crate},
    zip_safe=False,
)
