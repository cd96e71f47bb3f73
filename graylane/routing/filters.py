"""Gateway API filters that change a request on its way: the path of a URLRewrite or RequestRedirect.

``ReplaceFullPath`` replaces the whole path. ``ReplacePrefixMatch`` replaces the prefix the rule's
``PathPrefix`` match matched (segment-wise) and keeps what follows, so that exactly one ``/`` joins them:
prefix ``/foo`` with ``/bar``: ``/foo/x`` -> ``/bar/x``, ``/foo`` -> ``/bar``, ``/foo/`` -> ``/bar/``;
with ``/``: ``/foo/x`` -> ``/x``, ``/foo`` and ``/foo/`` -> ``/``; prefix ``/`` with ``/bar``: ``/x`` ->
``/bar/x``, ``/`` -> ``/bar`` (the table of the API's ``ReplacePrefixMatch``). Pure.
"""

from __future__ import annotations

from graylane.config.model import PathMatch


def replace_path(replace: PathMatch | None, matched: str, path: str) -> str:
    """``path`` (which the prefix ``matched`` matched; "" for other match types) after ``replace``."""
    if replace is None:
        return path
    if replace.kind == "Exact" or not matched:  # ReplaceFullPath (or a prefix rewrite of a non-prefix match)
        return replace.value
    rest = path[len(matched) :] if matched != "/" else ("" if path == "/" else path)  # "" or "/..."
    return replace.value.rstrip("/") + rest or "/"
