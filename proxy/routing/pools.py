"""One connection pool per upstream ``scheme://host:port``, shared by every route that sends there.

A route takes its pools on its first request (``RouteState.make_targets``: 10,000 routes that were never
sent anything hold none) and drops them when it leaves; a new version of a route that had taken pools takes
them at once, so they stay warm across swaps. A pool lives while one route uses it (its bound is the largest
``maxConnections`` among them) and is retired when the last one goes (idle connections close now, busy ones
when their response ends).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from graylane.proxy.deadlines import Deadlines
from graylane.proxy.upstream.pool import UpstreamPool

from graylane.config.model import UpstreamSpec

PoolKey = tuple[str, str, int]


class PoolRegistry:
    """The pools of the routes being served, counted by route."""

    def __init__(self, *, connect_timeout: float, deadlines: Deadlines) -> None:
        self._pools: dict[PoolKey, UpstreamPool] = {}
        # pool -> (route key, its maxConnections) while one route uses it (the usual case), then a dict
        self._users: dict[PoolKey, tuple[str, int] | dict[str, int]] = {}
        self._held: dict[str, tuple[PoolKey, ...]] = {}  # route key -> the pools it uses
        self._connect_timeout = connect_timeout
        self._deadlines = deadlines

    def take(self, route: str, specs: Iterable[UpstreamSpec]) -> dict[PoolKey, UpstreamPool]:
        """The pools of ``route``'s upstreams now; pools it used before and no longer does are dropped."""
        limits: dict[PoolKey, int] = {}
        for spec in specs:
            where = (str(spec.scheme), spec.host, spec.port)
            limits[where] = max(limits.get(where, 0), spec.max_connections)
        out = {}
        for key, limit in limits.items():
            out[key] = self._pool(key, self._join(key, route, limit))
        before = self._held.get(route, ())
        self._held[route] = tuple(limits)
        self._leave(route, [key for key in before if key not in limits])
        return out

    def holds(self, route: str) -> bool:
        """Whether ``route`` took pools (it was sent requests)."""
        return route in self._held

    def borrow(self, specs: Iterable[UpstreamSpec]) -> dict[PoolKey, UpstreamPool]:
        """Pools for a request of a route version no longer served: the pool of another route when there
        is one, else a pool retired at once (its connection closes after the request); none is counted."""
        out: dict[PoolKey, UpstreamPool] = {}
        for spec in specs:
            key = (str(spec.scheme), spec.host, spec.port)
            pool = self._pools.get(key)
            if pool is None:
                pool = out.get(key) or self._new(key, spec.max_connections)
                pool.close()
            out[key] = pool
        return out

    def drop(self, route: str) -> None:
        """``route`` left the table: pools nobody else uses are retired."""
        self._leave(route, self._held.pop(route, ()))

    def _pool(self, key: PoolKey, limit: int) -> UpstreamPool:
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._new(key, limit)
        pool.max_connections = limit
        return pool

    def _new(self, key: PoolKey, limit: int) -> UpstreamPool:
        return UpstreamPool(
            scheme=key[0], host=key[1], port=key[2], max_connections=limit,
            connect_timeout=self._connect_timeout, loop=asyncio.get_running_loop(), deadlines=self._deadlines,
        )  # fmt: skip

    def _join(self, key: PoolKey, route: str, limit: int) -> int:
        """Count ``route`` among the pool's users; the pool's bound now."""
        users = self._users.get(key)
        if users is None or (isinstance(users, tuple) and users[0] == route):
            self._users[key] = (route, limit)
            return limit
        if isinstance(users, tuple):
            users = self._users[key] = {users[0]: users[1]}
        users[route] = limit
        return max(users.values())

    def _leave(self, route: str, keys: Iterable[PoolKey]) -> None:
        for key in keys:
            users = self._users.get(key)
            if isinstance(users, dict):
                users.pop(route, None)
                if users:
                    self._pools[key].max_connections = max(users.values())
                    continue
            elif users is None or users[0] != route:
                continue
            del self._users[key]
            pool = self._pools.pop(key, None)
            if pool is not None:
                pool.close()

    def __len__(self) -> int:
        return len(self._pools)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools = {}
        self._users = {}
        self._held = {}
