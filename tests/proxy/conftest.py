"""Fixtures for the proxy tests: two real aiohttp upstreams on loopback and the proxy in front of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from proxytest import SERVERS, LocalProxy, Upstream, start_local_proxy, start_upstream


@pytest.fixture(scope="session", params=SERVERS, autouse=True)
def server_kind(request: pytest.FixtureRequest) -> str:
    """Every proxy test runs against both data-plane servers (``--server fast`` and ``--server aiohttp``);
    a test that starts a proxy asks for this fixture and passes it on (``server=server_kind``)."""
    return str(request.param)


@pytest.fixture
async def stable() -> AsyncIterator[Upstream]:
    up = await start_upstream("stable")
    yield up
    await up.runner.cleanup()


@pytest.fixture
async def canary() -> AsyncIterator[Upstream]:
    up = await start_upstream("canary")
    yield up
    await up.runner.cleanup()


@pytest.fixture
async def third() -> AsyncIterator[Upstream]:
    up = await start_upstream("third")
    yield up
    await up.runner.cleanup()


@pytest.fixture
async def proxy(tmp_path: Path, server_kind: str) -> AsyncIterator[LocalProxy]:
    conf = tmp_path / "routes"
    conf.mkdir()
    p = await start_local_proxy(conf, trusted_proxies=("10.99.0.0/16", "127.0.0.0/8"), server=server_kind)
    yield p
    await p.close()
