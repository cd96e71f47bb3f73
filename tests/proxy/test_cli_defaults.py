"""The bare commands run what ``Settings`` / ``OperatorConfig`` document (issue 10: a slots dataclass's class
attribute is a member descriptor, so ``default=Settings.server`` silently ran the aiohttp server)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from graylane.operator import cli as operator_cli
from graylane.operator.rollout.loop import RolloutSettings
from graylane.operator.state import OperatorConfig
from graylane.proxy.cli import build_parser, settings_from_args
from graylane.proxy.settings import Settings


def test_a_bare_proxy_command_gets_every_settings_default() -> None:
    args = build_parser().parse_args(["--config-dir", "routes"])
    assert settings_from_args(args) == dataclasses.replace(Settings(), config_dir=Path("routes"))
    assert args.server == "fast"


def test_a_bare_operator_command_gets_every_config_default() -> None:
    args = operator_cli.parse_args(["--namespace", "shop"])
    config, _, _ = operator_cli.build(args)
    defaults = {f.name: f.default for f in dataclasses.fields(OperatorConfig)}
    assert (config.resync_seconds, config.sweep_seconds) == (
        defaults["resync_seconds"],
        defaults["sweep_seconds"],
    )
    assert operator_cli.rollout_loop.settings_from(args) == RolloutSettings()


def test_an_unknown_server_is_refused() -> None:
    with pytest.raises(ValueError, match="server must be one of fast, aiohttp"):
        Settings(server="nginx")  # type: ignore[arg-type]


def test_reconcile_asks_the_rollout_book_from_construction_on() -> None:
    """Not swapped in by a startup handler (that depended on the order Kopf runs them in)."""
    _, state, book = operator_cli.build(operator_cli.parse_args(["--namespace", "shop"]))
    assert (state.weight_of, state.mirror_of, state.status_extra) == (
        book.weight_of,
        book.mirror_of,
        book.status_extra,
    )
