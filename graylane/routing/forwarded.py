"""RFC 7239 ``Forwarded`` parsing, strict: a header that does not parse is not believed at all.

Grammar (RFC 7239 §4, tokens and quoted strings of RFC 9110 §5.6):
``Forwarded = 1#forwarded-element``, ``forwarded-element = [ pair ] *( ";" [ pair ] )``,
``pair = token "=" ( token / quoted-string )``.

Refused (``parse_forwarded`` returns ``None``): an unbalanced quote (``by="x, for=1.2.3.4``, which would
swallow the element a trusted proxy appended), a parameter repeated inside one element (``for=a;for=b``), a
pair without ``=``, a name or bare value that is not a token, bytes after a closing quote, control
characters. Spaces and tabs around ``,`` and ``;`` are allowed; empty list elements are skipped (RFC 9110
§5.6.1). Names are case-insensitive and returned lower-case; values are returned unquoted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Element = dict[str, str]

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OWS = " \t"
MAX_ELEMENTS = 256


def is_token(text: str) -> bool:
    return bool(text) and all(ch in _TCHAR for ch in text)


def parse_forwarded(header: str) -> list[Element] | None:
    """The elements of a ``Forwarded`` header in order (each a dict of lower-case name -> value), or
    ``None`` when the header does not follow the grammar."""
    elements: list[Element] = []
    current: Element = {}
    pos, end = 0, len(header)
    while True:
        pos = _skip_ows(header, pos)
        if pos < end and header[pos] not in ",;":
            parsed = _pair(header, pos)
            if parsed is None:
                return None
            name, value, pos = parsed
            if name in current:
                return None  # a repeated parameter: which one is meant is anyone's guess
            current[name] = value
            pos = _skip_ows(header, pos)
        if pos >= end:
            break
        if header[pos] == ",":
            if current:
                elements.append(current)
                current = {}
            if len(elements) > MAX_ELEMENTS:
                return None
        elif header[pos] != ";":
            return None  # bytes after a value that are neither separator
        pos += 1
    if current:
        elements.append(current)
    return elements


def _skip_ows(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _OWS:
        pos += 1
    return pos


def _pair(text: str, pos: int) -> tuple[str, str, int] | None:
    """``token=value`` at ``pos``: (lower-case name, unquoted value, position after it), or None."""
    eq = text.find("=", pos)
    if eq < 0 or not is_token(text[pos:eq]):
        return None
    name = text[pos:eq].lower()
    pos = eq + 1
    if pos < len(text) and text[pos] == '"':
        return _quoted(text, pos + 1, name)
    start = pos
    while pos < len(text) and text[pos] in _TCHAR:
        pos += 1
    if pos == start:
        return None
    return name, text[start:pos], pos


def _quoted(text: str, pos: int, name: str) -> tuple[str, str, int] | None:
    """The rest of a quoted string (``pos`` is just after the opening quote); None when it never closes."""
    out: list[str] = []
    while pos < len(text):
        ch = text[pos]
        if ch == '"':
            return name, "".join(out), pos + 1
        if ch == "\\":
            pos += 1
            if pos >= len(text):
                return None
            ch = text[pos]
        if ch != "\t" and (ord(ch) < 0x20 or ord(ch) == 0x7F):
            return None
        out.append(ch)
        pos += 1
    return None  # unbalanced quote


def format_forwarded(elements: Sequence[Mapping[str, str]]) -> str:
    """The header for ``elements`` (values quoted when they are not tokens): ``parse_forwarded``'s inverse."""
    return ", ".join(";".join(f"{k}={_value(v)}" for k, v in element.items()) for element in elements)


def _value(value: str) -> str:
    if is_token(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def forwarded_for_hops(header: str) -> list[str] | None:
    """The ``for=`` value of every element, in order (``""`` for an element without one); None when the
    header does not parse."""
    elements = parse_forwarded(header)
    if elements is None:
        return None
    return [element.get("for", "") for element in elements]
