"""The build context an image sees: the files its ``<Dockerfile>.dockerignore`` lets in, staged and hashed.

The builder never reads the working tree directly: the admitted files are copied into a staging directory and
that directory is the context. What is hashed for the cache is therefore exactly what the build sees.

The ignore file follows Docker's rules (``*`` and ``?`` stay within one path segment, ``**`` spans segments,
a pattern that matches a directory matches everything under it, ``!`` re-admits, the last matching pattern
wins).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    pattern: str
    admit: bool


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            char = pattern[i]
            out.append("[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char))
            i += 1
    return re.compile("".join(out) + r"\Z")


def parse_ignore(text: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        admit = line.startswith("!")
        pattern = posixpath.normpath(line.removeprefix("!").strip().lstrip("/"))
        rules.append(Rule(_glob_regex(pattern), pattern, admit))
    return rules


def admitted(rel: str, rules: list[Rule]) -> bool:
    """Whether the file at ``rel`` (POSIX, relative to the context root) is sent to the builder."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for rule in rules:
        if any(rule.regex.match(path) for path in candidates):
            excluded = not rule.admit
    return not excluded


def _may_admit_below(rel: str, rules: list[Rule]) -> bool:
    """An excluded directory is still walked when some ``!`` pattern could admit something inside it."""
    return any(rule.admit and rule.pattern.startswith(rel + "/") for rule in rules)


def context_files(root: Path, ignore_text: str) -> list[str]:
    """The admitted files (and symlinks) under ``root``, sorted, as POSIX paths relative to it."""
    rules = parse_ignore(ignore_text)
    found: list[str] = []
    for current, dirs, files in os.walk(root):
        base = Path(current).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = [d for d in dirs if admitted(prefix + d, rules) or _may_admit_below(prefix + d, rules)]
        found.extend(prefix + name for name in files if admitted(prefix + name, rules))
    return sorted(found)


def stage(root: Path, files: list[str], dest: Path) -> None:
    """Copy ``files`` (from :func:`context_files`) into ``dest`` with their modes; symlinks stay symlinks."""
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target, follow_symlinks=False)


def digest(root: Path, files: list[str]) -> str:
    """sha256 over each file's path, executable bit and content (a symlink: its target)."""
    h = hashlib.sha256()
    for rel in files:
        path = root / rel
        h.update(rel.encode() + b"\0")
        if path.is_symlink():
            h.update(b"link\0" + os.readlink(path).encode())
        else:
            h.update(b"x\0" if os.access(path, os.X_OK) else b"-\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()
