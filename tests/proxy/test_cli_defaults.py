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


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["0.0.0.0:8081=8080"], (("0.0.0.0", 8081, 8080),)),
        (["127.0.0.1:9000=80", "[::1]:9001=8090"], (("127.0.0.1", 9000, 80), ("::1", 9001, 8090))),
    ],
)
def test_also_listen_gives_further_gateway_ports(values: list[str], expected: tuple[object, ...]) -> None:
    argv = ["--kube", *(a for v in values for a in ("--also-listen", v))]
    assert settings_from_args(build_parser().parse_args(argv)).more_listeners == expected


@pytest.mark.parametrize(
    "value", ["0.0.0.0:8081", "0.0.0.0:8081=", "0.0.0.0:8081=0", "0.0.0.0:x=80", "8081=80x"]
)
def test_a_malformed_also_listen_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--kube", "--also-listen", value])
    assert exited.value.code == 2 and "HOST:PORT" in capsys.readouterr().err
