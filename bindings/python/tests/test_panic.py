"""A panic inside the library comes back as InternalError (status 16) and the
process carries on. Needs the test build (make testlib), which exports
tinymls_test_panic; `make test` sets TINYMLS_REQUIRE_TEST_HOOKS=1 so that this
fails instead of skipping when pointed at a release library."""

from __future__ import annotations

import os
import threading

import pytest

import tinymls
from tinymls import _ffi


@pytest.fixture
def test_panic() -> None:
    if not _ffi.has_test_hooks:
        if os.environ.get("TINYMLS_REQUIRE_TEST_HOOKS") == "1":
            pytest.fail(f"{tinymls.library_path()} does not export tinymls_test_panic (build it with `make testlib`)")
        pytest.skip("the library is a release build without tinymls_test_panic")


@pytest.mark.usefixtures("test_panic")
def test_panic_is_internal_error_and_contexts_survive() -> None:
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=0)) as before:
        ct = before.encrypt(b"made before the panic")
        assert int(tinymls.Status.INTERNAL) == 16
        assert _ffi.lib.tinymls_test_panic() == 16
        with pytest.raises(tinymls.InternalError) as info:
            _ffi.check(_ffi.lib.tinymls_test_panic())
        assert info.value.status == 16
        assert str(info.value) == _ffi.lib.tinymls_status_str(16).decode()
        # The context made before still works, and new ones can be made.
        assert before.decrypt(ct) == b"made before the panic"
        before.rotate()
        assert before.epoch == 1
        with tinymls.Context.new() as after:
            assert after.decrypt(after.encrypt(b"after")) == b"after"


@pytest.mark.usefixtures("test_panic")
def test_panics_on_many_threads() -> None:
    results: list[int] = []
    lock = threading.Lock()

    def panic() -> None:
        for _ in range(10):
            status = _ffi.lib.tinymls_test_panic()
            with lock:
                results.append(status)

    with tinymls.Context.new() as ctx:
        threads = [threading.Thread(target=panic) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert results == [16] * 40
        assert ctx.decrypt(ctx.encrypt(b"still fine")) == b"still fine"
