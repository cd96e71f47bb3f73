"""The targets of one route's plan: where each ``(upstream name, track)`` is sent, held compactly, and made
on the route's first request (:meth:`Targets.later`): until then a route holds no targets and no pools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from graylane.proxy.routing.pools import PoolKey
from graylane.proxy.upstream.edits import ResponseEdit
from graylane.proxy.upstream.forward import Target
from graylane.proxy.upstream.headers import TrackHeaders
from graylane.proxy.upstream.pool import UpstreamPool

from graylane.config.model import RouteConfig, UpstreamSpec

TRACKS = ("stable", "canary")

Rows = tuple[tuple[Target, ...], ...]
Extra = tuple[tuple[str, str, Target], ...]


class TargetMaker(Protocol):
    """Makes the targets of a route's plan when they are first needed (``RouteState``)."""

    def make_targets(self, targets: Targets, config: RouteConfig) -> None: ...


class Targets:
    """``(upstream name, track) -> Target`` of one route, read like a mapping but held as tuples: a row of
    targets per track, in the order of the route's upstream names (a dict keyed by tuples cost more than
    the targets themselves), and the odd extra one (the mirror's copy).

    Made now, or later (:meth:`later`): then the first read asks ``maker`` to :meth:`fill` them in."""

    __slots__ = ("_config", "_extra", "_maker", "_names", "_rows", "_tracks")

    def __init__(
        self, names: tuple[str, ...], tracks: tuple[str, ...], rows: Rows, extra: Extra = (),
    ) -> None:  # fmt: skip
        self._maker: TargetMaker | None = None
        self._config: RouteConfig | None = None
        self.fill(names, tracks, rows, extra)

    @classmethod
    def later(cls, maker: TargetMaker, config: RouteConfig) -> Targets:
        """Targets ``maker`` makes for ``config`` when one is first read."""
        targets = cls((), (), ())
        targets._maker = maker
        targets._config = config
        return targets

    @property
    def made(self) -> bool:
        return self._maker is None

    def fill(self, names: tuple[str, ...], tracks: tuple[str, ...], rows: Rows, extra: Extra) -> None:
        """The targets, made (by the maker of :meth:`later`)."""
        self._names = names
        self._tracks = tracks
        self._rows = rows
        self._extra = extra
        self._maker = None
        self._config = None

    def _make(self) -> None:
        maker, config = self._maker, self._config
        if maker is not None and config is not None:
            maker.make_targets(self, config)

    def get(self, key: tuple[str, str]) -> Target | None:
        if self._maker is not None:
            self._make()
        name, track = key
        tracks = self._tracks
        for t in range(len(tracks)):
            if tracks[t] == track:
                names = self._names
                for i in range(len(names)):
                    if names[i] == name:
                        return self._rows[t][i]
                break
        for extra_name, extra_track, target in self._extra:
            if extra_name == name and extra_track == track:
                return target
        return None

    def __getitem__(self, key: tuple[str, str]) -> Target:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: tuple[str, str]) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        if self._maker is not None:
            self._make()
        return len(self._tracks) * len(self._names) + len(self._extra)

    def items(self) -> list[tuple[tuple[str, str], Target]]:
        if self._maker is not None:
            self._make()
        out = [
            ((n, t), row[i])
            for t, row in zip(self._tracks, self._rows, strict=True)
            for i, n in enumerate(self._names)
        ]
        return out + [((n, t), target) for n, t, target in self._extra]

    def keys(self) -> list[tuple[str, str]]:
        return [key for key, _ in self.items()]

    def values(self) -> list[Target]:
        return [target for _, target in self.items()]


_TRACKS: dict[tuple[str, ...], tuple[str, ...]] = {}


def shared_tracks(tracks: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple per distinct list of tracks (``stable, canary``; ``rule-0 .. rule-n``) for every route."""
    return _TRACKS.setdefault(tracks, tracks)


def canary_targets(
    config: RouteConfig, pools: Mapping[PoolKey, UpstreamPool], underscores: bool
) -> tuple[tuple[str, ...], tuple[str, ...], Rows, Extra]:
    """A CanaryRoute's targets: a row per track (``stable``, ``canary``: its ``requestHeaders``) over its
    upstreams, and the mirror's copy of the canary (its feature flags, ``X-Graylane-Track: mirror``)."""
    plans = [(track, _track_headers(config, track, underscores, label=track)) for track in TRACKS]
    specs = tuple(config.upstreams.values())
    rows = tuple(tuple(make_target(spec, pools, headers) for spec in specs) for _, headers in plans)
    extra: Extra = ()
    if config.mirror is not None:
        headers = _track_headers(config, "canary", underscores, label="mirror")
        extra = ((config.canary, "mirror", make_target(config.upstreams[config.canary], pools, headers)),)
    return tuple(config.upstreams), shared_tracks(tuple(track for track, _ in plans)), rows, extra


def make_target(
    spec: UpstreamSpec, pools: Mapping[PoolKey, UpstreamPool], headers: TrackHeaders,
    *, response: ResponseEdit | None = None, timeout: float | None = None,
) -> Target:  # fmt: skip
    return Target(
        pool=pools[(spec.scheme, spec.host, spec.port)],
        plan=headers,
        base_path=spec.base_path.encode("utf-8"),
        timeout=spec.timeout_seconds if timeout is None else timeout,
        response=response,
    )


def _track_headers(config: RouteConfig, track: str, underscores: bool, *, label: str) -> TrackHeaders:
    """``track``'s ``requestHeaders`` (its feature flags), sent with ``X-Graylane-Track: <label>``."""
    mutation = config.request_headers.get(track)  # type: ignore[call-overload]
    set_headers = dict(mutation.set) if mutation is not None else {}
    preserve = config.preserve_host
    return TrackHeaders.compile(label, set_headers, underscores=underscores, preserve_host=preserve)
