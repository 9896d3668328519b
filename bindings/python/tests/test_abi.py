"""The binding against include/tinymls.h: every function declared with the
header's types, constants, status numbers, the config layout, the ABI check
at import, and how the library is found."""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import importlib.metadata
import importlib.resources
import os
import re
import shutil
import subprocess
import sys
from ctypes import POINTER, c_char, c_char_p, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import Any

import pytest

import tinymls
from tinymls import _ffi

from conftest import HEADER, REPO, loaded_library_file

# The C types the header uses, spelled as token lists joined by spaces, and
# the ctypes type the binding must declare for each.
C_TO_CTYPES: dict[str, Any] = {
    "void": None,
    "tinymls_status": c_uint32,
    "uint32_t": c_uint32,
    "size_t": c_size_t,
    "const char *": c_char_p,
    "const uint8_t *": c_char_p,
    "uint8_t *": POINTER(c_char),
    "char *": POINTER(c_char),
    "size_t *": POINTER(c_size_t),
    "const size_t *": POINTER(c_size_t),
    "tinymls_status *": POINTER(c_uint32),
    "void *": c_void_p,
    "tinymls_event_fn": _ffi.EventFn,
    "struct tinymls_health *": POINTER(_ffi.CHealth),
    "struct tinymls_state_info *": POINTER(_ffi.CStateInfo),
    "uint64_t": c_uint64,
    "uint32_t *": POINTER(c_uint32),
    "uint64_t *": POINTER(c_uint64),
    "int64_t": c_int64,
    "int32_t": c_int32,
    "struct tinymls_config *": POINTER(_ffi.CConfig),
    "const struct tinymls_config *": POINTER(_ffi.CConfig),
    "struct tinymls_context *": POINTER(_ffi.ContextStruct),
    "struct tinymls_context * *": POINTER(POINTER(_ffi.ContextStruct)),
}


def _header_text() -> str:
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _type_of(decl: str) -> str:
    return " ".join(re.findall(r"\w+|\*", decl))


def header_functions() -> dict[str, tuple[str, list[str]]]:
    """name -> (return type, [parameter types]) for every declared function."""
    code = "\n".join(line for line in _header_text().splitlines() if not line.lstrip().startswith("#"))
    functions: dict[str, tuple[str, list[str]]] = {}
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(tinymls_\w+)\s*\(([^()]*)\)\s*;", code):
        ret, name, params = m.group(1), m.group(2), m.group(3).strip()
        args: list[str] = []
        if params != "void":
            for p in params.split(","):
                tokens = re.findall(r"\w+|\*", p)
                assert len(tokens) >= 2 and tokens[-1] != "*", f"{name}: unnamed parameter {p!r}"
                args.append(" ".join(tokens[:-1]))
        functions[name] = (_type_of(ret), args)
    return functions


def test_header_parses() -> None:
    functions = header_functions()
    # Every function SPEC section 9 lists is there; the parser found them all.
    for name in ("tinymls_encrypt", "tinymls_decrypt", "tinymls_context_join", "tinymls_version"):
        assert name in functions
    assert len(functions) == len(set(re.findall(r"\btinymls_\w+\s*\(", _header_text())))


def test_every_header_function_has_argtypes_and_restype() -> None:
    functions = header_functions()
    checked = 0
    for name, (ret, params) in functions.items():
        if name in _ffi.OPTIONAL_SIGNATURES and not _ffi.has_test_hooks:
            continue  # the release library does not export the test hook
        assert ret in C_TO_CTYPES, f"{name}: add a mapping for return type {ret!r}"
        for p in params:
            assert p in C_TO_CTYPES, f"{name}: add a mapping for parameter type {p!r}"
        fn = getattr(_ffi.lib, name)
        assert fn.restype is C_TO_CTYPES[ret], f"{name}: restype {fn.restype} != {ret}"
        assert fn.argtypes is not None, f"{name}: argtypes not set"
        assert list(fn.argtypes) == [C_TO_CTYPES[p] for p in params], f"{name}: argtypes {fn.argtypes}"
        checked += 1
    assert checked == len(functions) - (0 if _ffi.has_test_hooks else len(_ffi.OPTIONAL_SIGNATURES))


def test_binding_declares_nothing_beyond_the_header() -> None:
    declared = set(_ffi.SIGNATURES) | set(_ffi.OPTIONAL_SIGNATURES)
    assert declared == set(header_functions())


def test_constants_match_header() -> None:
    defines = dict(re.findall(r"^#define TINYMLS_(\w+) (\d+)\s*$", HEADER.read_text(), flags=re.M))
    assert "OVERHEAD" in defines and "ABI_VERSION" in defines
    for name, value in defines.items():
        assert getattr(tinymls, name) == int(value), name
    assert tinymls.OVERHEAD == 40


def test_status_numbers_match_header() -> None:
    enum = re.search(r"enum tinymls_status[^{]*\{(.*?)\}", _header_text(), flags=re.S)
    assert enum is not None
    numbers = {name: int(value) for name, value in re.findall(r"TINYMLS_(?:ERR_)?(\w+) = (\d+)", enum.group(1))}
    assert numbers == {s.name: s.value for s in tinymls.Status}
    assert len(numbers) == 17


def test_config_layout_matches_header() -> None:
    struct = re.search(r"typedef struct tinymls_config \{(.*?)\} tinymls_config;", _header_text(), flags=re.S)
    assert struct is not None
    fields = re.findall(r"(uint\d+_t) (\w+);", struct.group(1))
    widths = {"uint32_t": c_uint32, "uint64_t": c_uint64}
    assert [(n, widths[t]) for t, n in fields] == list(_ffi.CConfig._fields_)
    assert [f.name for f in dataclasses.fields(tinymls.Config)] == [n for _, n in fields]
    offsets = re.findall(r"offsetof\(tinymls_config, (\w+)\) == (\d+)", HEADER.read_text())
    assert len(offsets) >= 4
    for name, off in offsets:
        assert getattr(_ffi.CConfig, name).offset == int(off), name
    size = re.search(r"sizeof\(tinymls_config\) == (\d+)", HEADER.read_text())
    assert size is not None
    assert ctypes.sizeof(_ffi.CConfig) == int(size.group(1)) == _ffi.lib.tinymls_config_size() == 80


def test_health_layout_matches_header() -> None:
    struct = re.search(r"typedef struct tinymls_health \{(.*?)\} tinymls_health;", _header_text(), flags=re.S)
    assert struct is not None
    fields = re.findall(r"(u?int\d+_t) (\w+);", struct.group(1))
    widths = {"uint32_t": c_uint32, "uint64_t": c_uint64, "int64_t": c_int64}
    assert [(n, widths[t]) for t, n in fields] == list(_ffi.CHealth._fields_)
    offsets = re.findall(r"offsetof\(tinymls_health, (\w+)\) == (\d+)", HEADER.read_text())
    assert len(offsets) >= 4
    for name, off in offsets:
        assert getattr(_ffi.CHealth, name).offset == int(off), name
    size = re.search(r"sizeof\(tinymls_health\) == (\d+)", HEADER.read_text())
    assert size is not None
    assert ctypes.sizeof(_ffi.CHealth) == int(size.group(1)) == _ffi.lib.tinymls_health_size() == 96


# The ABI 2 layout of tinymls_health, field by field (SPEC v2 section 9):
# 48-bit epochs in u64 fields, the signed clock skew last.
HEALTH_V2_LAYOUT = [
    ("state", 0, c_uint32),
    ("last_error", 4, c_uint32),
    ("retained_epochs", 8, c_uint32),
    ("flags", 12, c_uint32),
    ("current_epoch", 16, c_uint64),
    ("oldest_epoch", 24, c_uint64),
    ("uptime_ms", 32, c_uint64),
    ("key_age_ms", 40, c_uint64),
    ("encrypt_count", 48, c_uint64),
    ("decrypt_count", 56, c_uint64),
    ("error_count", 64, c_uint64),
    ("rotation_count", 72, c_uint64),
    ("sender_id", 80, c_uint64),
    ("clock_skew_ms", 88, c_int64),
]


def test_health_struct_is_the_abi_2_layout() -> None:
    assert ctypes.sizeof(_ffi.CHealth) == _ffi.HEALTH_SIZE == 96
    assert list(_ffi.CHealth._fields_) == [(name, ctype) for name, _, ctype in HEALTH_V2_LAYOUT]
    for name, offset, _ in HEALTH_V2_LAYOUT:
        assert getattr(_ffi.CHealth, name).offset == offset, name
    # The skew is signed: a sender behind this context's clock is negative.
    h = _ffi.CHealth(clock_skew_ms=-250, current_epoch=2**48 - 1)
    assert (h.clock_skew_ms, h.current_epoch) == (-250, 2**48 - 1)


def test_epoch_getter_is_64_bit() -> None:
    assert _ffi.lib.tinymls_context_epoch.argtypes[1] is POINTER(c_uint64)


def test_abi_version() -> None:
    assert _ffi.lib.tinymls_abi_version() == tinymls.ABI_VERSION == 2


def test_config_defaults_are_the_librarys() -> None:
    c = _ffi.CConfig()
    _ffi.lib.tinymls_config_default(ctypes.byref(c))
    assert tinymls.Config._from_c(c) == tinymls.Config()


class _StubLib:
    def __init__(self, abi: int, size: int, health: int = 96) -> None:
        self.abi, self.size, self.health = abi, size, health

    def tinymls_abi_version(self) -> int:
        return self.abi

    def tinymls_config_size(self) -> int:
        return self.size

    def tinymls_health_size(self) -> int:
        return self.health


def test_abi_check_refuses_other_versions() -> None:
    _ffi.check_abi(_StubLib(2, 80), "ok.so")  # accepted
    # A v1 library (80-byte health, 32-bit epochs) is refused by its version,
    # before any size is looked at.
    with pytest.raises(tinymls.LibraryError, match=r"'v1\.so' implements C ABI version 1, .*needs version 2"):
        _ffi.check_abi(_StubLib(1, 80, 80), "v1.so")
    with pytest.raises(tinymls.LibraryError, match="ABI version 3"):
        _ffi.check_abi(_StubLib(3, 80), "future.so")
    with pytest.raises(ImportError, match=r"sizeof\(tinymls_config\) = 72"):
        _ffi.check_abi(_StubLib(2, 72), "odd.so")
    with pytest.raises(ImportError, match=r"sizeof\(tinymls_health\) = 80"):
        _ffi.check_abi(_StubLib(2, 80, 80), "odd.so")


def test_declare_refuses_a_library_without_a_symbol() -> None:
    class Missing:
        pass

    with pytest.raises(tinymls.LibraryError, match="does not export tinymls_config_default"):
        _ffi.declare(Missing(), "empty.so")


def test_versions_agree() -> None:
    cargo = re.search(r'^version = "([^"]+)"', (REPO / "Cargo.toml").read_text(), flags=re.M)
    pyproject = re.search(
        r'^version = "([^"]+)"', (Path(__file__).parents[1] / "pyproject.toml").read_text(), flags=re.M
    )
    assert cargo is not None and pyproject is not None
    assert (
        cargo.group(1)
        == pyproject.group(1)
        == tinymls.__version__
        == importlib.metadata.version("tinymls")
        == tinymls.version()
    )
    assert tinymls.backend() in ("aws-lc-rs", "rust-crypto", "aws-lc-rs-fips")
    # FIPS mode exactly when the library was built with the FIPS provider.
    assert tinymls.fips_mode() == (tinymls.backend() == "aws-lc-rs-fips")
    if os.environ.get("TINYMLS_EXPECT_FIPS") == "1":
        assert tinymls.fips_mode(), "make test-fips runs this against the FIPS build"


def test_calls_release_the_gil() -> None:
    # ctypes releases the GIL around calls through CDLL, never through PyDLL.
    assert isinstance(_ffi.lib, ctypes.CDLL)
    assert not isinstance(_ffi.lib, ctypes.PyDLL)


def test_package_is_typed() -> None:
    assert importlib.resources.files("tinymls").joinpath("py.typed").is_file()


# -- finding the library (each in a fresh interpreter) ------------------------

_PROBE = """
import os, sys
try:
    import tinymls
except ImportError as e:
    print("ImportError", type(e).__name__, e)
    sys.exit(0)
with open("/proc/self/maps") as maps:
    mapped = sorted({os.path.realpath(l.split(maxsplit=5)[5].strip()) for l in maps
                     if l.count(" ") >= 5 and "libtinymls" in l})
print("loaded", tinymls.library_path(), *mapped)
"""


def _probe(env_changes: dict[str, str | None], pythonpath: Path | None = None) -> list[str]:
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.split()


def _package_copy(tmp_path: Path, with_library: bool) -> Path:
    src = Path(tinymls.__file__).parent
    dst = tmp_path / "site" / "tinymls"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("libtinymls.so*", "__pycache__"))
    if with_library:
        shutil.copy(loaded_library_file(), dst / "libtinymls.so")
    return tmp_path / "site"


def test_load_from_env_var() -> None:
    lib = loaded_library_file()
    out = _probe({"TINYMLS_LIBRARY": lib})
    assert out[:2] == ["loaded", lib] and out[2:] == [lib]


def test_env_var_with_missing_file_fails_clearly(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope" / "libtinymls.so")
    out = _probe({"TINYMLS_LIBRARY": missing})
    assert out[:2] == ["ImportError", "LibraryError"]
    assert repr(missing) in " ".join(out)


def test_env_var_with_a_foreign_library_fails_clearly() -> None:
    libm = ctypes.util.find_library("m")
    assert libm is not None
    out = _probe({"TINYMLS_LIBRARY": libm})
    assert out[:2] == ["ImportError", "LibraryError"]
    assert "does not export tinymls_" in " ".join(out)


def test_load_from_package_directory(tmp_path: Path) -> None:
    site = _package_copy(tmp_path, with_library=True)
    bundled = str(site / "tinymls" / "libtinymls.so")
    out = _probe({"TINYMLS_LIBRARY": None}, pythonpath=site)
    assert out == ["loaded", bundled, os.path.realpath(bundled)]


def test_load_from_system(tmp_path: Path) -> None:
    site = _package_copy(tmp_path, with_library=False)
    libdir = tmp_path / "lib"
    libdir.mkdir()
    shutil.copy(loaded_library_file(), libdir / "libtinymls.so.0")
    out = _probe({"TINYMLS_LIBRARY": None, "LD_LIBRARY_PATH": str(libdir)}, pythonpath=site)
    assert out[0] == "loaded" and out[-1] == str(libdir / "libtinymls.so.0")


def test_not_found_anywhere_fails_clearly(tmp_path: Path) -> None:
    site = _package_copy(tmp_path, with_library=False)
    if ctypes.util.find_library("tinymls"):
        pytest.skip("a libtinymls is installed system-wide")
    out = _probe({"TINYMLS_LIBRARY": None}, pythonpath=site)
    assert out[:2] == ["ImportError", "LibraryError"]
    assert "TINYMLS_LIBRARY" in " ".join(out)


def test_version_number_is_the_header_twin() -> None:
    expected = tinymls.VERSION_MAJOR * 10000 + tinymls.VERSION_MINOR * 100 + tinymls.VERSION_PATCH
    assert tinymls.version_number() == expected
    assert tinymls.version() == f"{tinymls.VERSION_MAJOR}.{tinymls.VERSION_MINOR}.{tinymls.VERSION_PATCH}"


# Every function of the last ABI-1 header (include/tinymls.h before the v2
# core): what a real v1 libtinymls exports. Seven functions the binding
# declares came after it (tinymls_last_error_message, _version_number, ...).
_V1_FUNCTIONS = """
tinymls_abi_version tinymls_aead_backend tinymls_ciphertext_len tinymls_config_default
tinymls_config_size tinymls_config_validate tinymls_context_close tinymls_context_epoch
tinymls_context_export tinymls_context_free tinymls_context_health tinymls_context_import
tinymls_context_join tinymls_context_new tinymls_context_sender_id tinymls_decrypt
tinymls_decrypt_batch tinymls_encrypt tinymls_encrypt_batch tinymls_health_size
tinymls_metrics_enable tinymls_metrics_prometheus tinymls_rotate tinymls_set_event_callback
tinymls_state_format_version tinymls_status_name tinymls_status_str tinymls_version
""".split()


def test_a_real_v1_library_is_refused_by_its_version(tmp_path: Path) -> None:
    # The README: "A v1 library (ABI 1) is refused by name ("implements C ABI
    # version 1, but this binding needs version 2")". A v1 library lacks
    # functions of ABI 2, so the version must be checked before the symbols.
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    values = {"tinymls_abi_version": 1, "tinymls_config_size": 80, "tinymls_health_size": 80}
    src = tmp_path / "v1.c"
    src.write_text(
        "#include <stddef.h>\n" + "".join(f"size_t {name}(void) {{ return {values.get(name, 0)}; }}\n" for name in _V1_FUNCTIONS)
    )
    lib = tmp_path / "libtinymls.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    out = " ".join(_probe({"TINYMLS_LIBRARY": str(lib)}))
    assert out.startswith("ImportError LibraryError"), out
    assert "implements C ABI version 1, but this binding needs version 2" in out, out
