"""The strict Prometheus text-format parser: table tests for good and bad lines, a round-trip property."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graylane.rollout import promtext
from graylane.rollout.promtext import PromTextError, Sample


def one(line: str) -> Sample:
    samples = promtext.parse(line + "\n")
    assert len(samples) == 1
    return samples[0]


@pytest.mark.parametrize(
    ("line", "name", "labels", "value"),
    [
        # --- names and values ---
        ("up 1", "up", (), 1.0),
        ("a:b_c 0.5", "a:b_c", (), 0.5),
        ("x 1e3", "x", (), 1000.0),
        ("x -2.5E-1", "x", (), -0.25),
        ("x .5", "x", (), 0.5),
        ("x 7 1700000000000", "x", (), 7.0),
        ("x +Inf", "x", (), math.inf),
        ("x -Inf", "x", (), -math.inf),
        # --- labels ---
        ('x{a="1"} 2', "x", (("a", "1"),), 2.0),
        ('x{b="2",a="1"} 3', "x", (("a", "1"), ("b", "2")), 3.0),
        ('x{a="1",} 3', "x", (("a", "1"),), 3.0),
        ("x{} 3", "x", (), 3.0),
        ('x{a=""} 3', "x", (("a", ""),), 3.0),
        ('x{a="q\\"uote"} 1', "x", (("a", 'q"uote'),), 1.0),
        ('x{a="back\\\\slash"} 1', "x", (("a", "back\\slash"),), 1.0),
        ('x{a="new\\nline"} 1', "x", (("a", "new\nline"),), 1.0),
        ('x{a="sp ace, {brace}"} 1', "x", (("a", "sp ace, {brace}"),), 1.0),
        ('x{route="shop/checkout",le="+Inf"} 9', "x", (("le", "+Inf"), ("route", "shop/checkout")), 9.0),
        ("x\t4", "x", (), 4.0),
        ("x 4\r", "x", (), 4.0),
    ],
)
def test_parses_sample_lines(line: str, name: str, labels: tuple[tuple[str, str], ...], value: float) -> None:
    sample = one(line)
    assert (sample.name, sample.labels, sample.value) == (name, labels, value)


def test_nan_value_parses_as_nan() -> None:
    assert math.isnan(one("x NaN").value)


def test_comments_and_blank_lines_are_skipped() -> None:
    page = "# HELP x Something.\n# TYPE x counter\n\n   \nx 1\n# a free comment\ny 2\n"
    assert [(s.name, s.value) for s in promtext.parse(page)] == [("x", 1.0), ("y", 2.0)]


@pytest.mark.parametrize(
    ("page", "line", "fragment"),
    [
        # --- the value ---
        ("x", 1, "expected a space and a value"),
        ("x ", 1, "expected a value"),
        ("x 1_000", 1, "not a sample value"),
        ("x infinity", 1, "not a sample value"),
        ("x inf", 1, "not a sample value"),
        ("x 0x10", 1, "not a sample value"),
        ("x 1 2 3", 1, "expected a value and an optional timestamp"),
        ("x 1 1.5", 1, "not a timestamp"),
        # --- names ---
        ("1x 1", 1, "expected a metric name"),
        ('{a="1"} 1', 1, "expected a metric name"),
        ("x-y 1", 1, "expected a space"),
        # --- labels ---
        ('x{a="1" 2', 1, "expected ',' or '}'"),
        ("x{a=1} 2", 1, "quoted value"),
        ('x{a="1",a="2"} 2', 1, "appears twice"),
        ('x{1a="1"} 2', 1, "label name"),
        ('x{a="bad\\escape"} 2', 1, "quoted value"),
        ('x{a="open} 2', 1, "quoted value"),
        ('x{a="1"}2', 1, "expected a space"),
        # --- the page ---
        ("ok 1\nx 1\nx 2", 3, "appears twice"),
        ('ok 1\nx{a="1",b="2"} 1\nx{b="2",a="1"} 2', 3, "appears twice"),
        ("ok 1\nbad\x00 1", 2, "control character"),
        ("ok 1\nx 1\rinjected 2", 2, "control character"),
    ],
)
def test_rejects_bad_pages_with_line_number(page: str, line: int, fragment: str) -> None:
    with pytest.raises(PromTextError) as info:
        promtext.parse(page)
    assert info.value.line == line
    assert fragment in str(info.value)


def test_rejects_oversized_page() -> None:
    with pytest.raises(PromTextError, match="larger than"):
        promtext.parse("x 1\n" * 100, max_bytes=50)


def test_sample_label_lookup() -> None:
    sample = one('x{route="a/b",track="canary"} 1')
    assert sample.label("track") == "canary"
    assert sample.label("missing") is None


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True)
label_values = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=20
)


@given(
    name=st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,20}", fullmatch=True),
    labels=st.dictionaries(label_names, label_values, max_size=5),
    value=st.one_of(st.integers(min_value=0, max_value=10**15), st.floats(allow_nan=False)),
)
def test_round_trip_of_rendered_samples(name: str, labels: dict[str, str], value: float) -> None:
    body = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
    text_value = {math.inf: "+Inf", -math.inf: "-Inf"}.get(float(value), repr(value))
    page = f"# TYPE {name} counter\n{name}{{{body}}} {text_value}\n"
    [sample] = promtext.parse(page)
    assert sample == Sample(name, tuple(sorted(labels.items())), float(value))


line_parts = st.sampled_from(
    [
        "x",
        "a_b:c",
        "{",
        "}",
        "=",
        '"',
        ",",
        " ",
        "\t",
        "\\",
        '\\"',
        "\\n",
        "le",
        "1",
        "+Inf",
        "NaN",
        "1e3",
        "-",
        ".",
        "é",
        '"v"',
        'a="1"',
        '=""',
    ]
)


@given(st.lists(line_parts, min_size=1, max_size=12).map("".join))
def test_fast_path_agrees_with_the_slow_path(line: str) -> None:
    """The one-regex fast path must accept exactly what the careful parser accepts, with the same result."""
    try:
        slow: Sample | None = promtext._parse_sample_slowly(line, 1)
    except PromTextError:
        slow = None
    try:
        fast: Sample | None = promtext._parse_sample(line, 1)
    except PromTextError:
        fast = None
    if slow is None or fast is None:
        assert slow is None and fast is None, (line, slow, fast)
    else:
        assert (fast.name, fast.labels) == (slow.name, slow.labels)
        assert fast.value == slow.value or (math.isnan(fast.value) and math.isnan(slow.value))
