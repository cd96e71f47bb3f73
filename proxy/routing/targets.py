"""The targets of one route's plan: where each ``(upstream name, track)`` is sent, held compactly."""

from __future__ import annotations

from graylane.proxy.upstream.forward import Target


class Targets:
    """``(upstream name, track) -> Target`` of one route, read like a mapping but held as tuples: a row of
    targets per track, in the order of the route's upstream names (a dict keyed by tuples cost more than
    the targets themselves), and the odd extra one (the mirror's copy)."""

    __slots__ = ("_extra", "_names", "_rows", "_tracks")

    def __init__(
        self, names: tuple[str, ...], tracks: tuple[str, ...], rows: tuple[tuple[Target, ...], ...],
        extra: tuple[tuple[str, str, Target], ...] = (),
    ) -> None:  # fmt: skip
        self._names = names
        self._tracks = tracks
        self._rows = rows
        self._extra = extra

    def get(self, key: tuple[str, str]) -> Target | None:
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
        return len(self._tracks) * len(self._names) + len(self._extra)

    def items(self) -> list[tuple[tuple[str, str], Target]]:
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
