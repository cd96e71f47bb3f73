"""``GRAYLANE_GC_TUNING``: one switch for the collector thresholds and the freeze of the startup heap.

The freeze used to run unconditionally in ``serve()`` as well, so switching the setting off did not stop it.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from graylane.proxy import cli
from graylane.proxy.app import serve
from graylane.proxy.settings import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def _serve_once(tmp_path: Path, *, gc_tuning: bool) -> None:
    settings = Settings(
        listen_host="127.0.0.1", listen_port=0, admin_host="127.0.0.1", admin_port=0, config_dir=tmp_path,
        gc_tuning=gc_tuning,
    )  # fmt: skip
    stop = asyncio.Event()
    stop.set()  # start up completely, then drain at once
    await serve(settings, stop=stop)


@pytest.mark.usefixtures("unfrozen")
async def test_with_gc_tuning_off_serve_freezes_nothing(tmp_path: Path) -> None:
    await _serve_once(tmp_path, gc_tuning=False)
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("unfrozen")
async def test_with_gc_tuning_on_serve_freezes_the_startup_heap(tmp_path: Path) -> None:
    await _serve_once(tmp_path, gc_tuning=True)
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize(("env", "expected"), [(None, True), ("1", True), ("0", False)])
def test_the_switch_is_read_once_into_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: str | None, expected: bool
) -> None:
    if env is None:
        monkeypatch.delenv("GRAYLANE_GC_TUNING", raising=False)
    else:
        monkeypatch.setenv("GRAYLANE_GC_TUNING", env)
    args = cli.build_parser().parse_args(["--config-dir", str(tmp_path)])
    assert cli.settings_from_args(args).gc_tuning is expected
