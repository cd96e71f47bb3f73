"""``graylane render``: compiles manifests offline as the operator does; bad input -> exit 1 + paths."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graylane.cli.main import main
from graylane.config.document import load_route_document

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "checkout"
GRAYLANE = Path(sys.executable).with_name("graylane")


def test_render_writes_one_document_per_route(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(GRAYLANE), "render", "-f", str(EXAMPLES), "-o", str(tmp_path / "out"), "-n", "shop"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["shop.checkout.json"]
    text = (tmp_path / "out" / "shop.checkout.json").read_text()
    config = load_route_document(text.strip())
    assert config.route.key == "shop/checkout" and config.weight == 5
    assert json.loads(text)["upstreams"]["checkout-v1"]["url"] == "http://checkout-v1.shop.svc:8080"


def test_files_and_namespaces_in_manifests(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "upstreams.yaml", tmp_path / "u.yaml")
    route = (
        (EXAMPLES / "canaryroute.yaml")
        .read_text()
        .replace("name: checkout\n", "name: checkout\n  namespace: eu\n", 1)
    )
    (tmp_path / "r.yml").write_text(route)
    upstreams = (tmp_path / "u.yaml").read_text().replace("labels:", "namespace: eu\n  labels:")
    (tmp_path / "u.yaml").write_text(upstreams)
    assert (
        main(
            [
                "render",
                "-f",
                str(tmp_path / "u.yaml"),
                "-f",
                str(tmp_path / "r.yml"),
                "-o",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    assert (tmp_path / "o" / "eu.checkout.json").is_file()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ('X-Canary, exact: "true"}', 'X-Canary, regex: "(a)\\\\1"}'),
            "spec.rules[0].match.headers[0].regex",
        ),
        (("weight: 5 ", "weight: 500 "), "spec.weight"),
        (("canary: checkout-v2", "canary: checkout-v9"), "spec.canary"),
        (
            ("sourceCIDRs: [203.0.113.0/24", "sourceCIDRs: [203.0.113.7/24"),
            "spec.rules[3].match.sourceCIDRs[0]",
        ),
    ],
)
def test_invalid_input_exits_1_with_the_field_path_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], expected: str
) -> None:
    shutil.copy(EXAMPLES / "upstreams.yaml", tmp_path / "upstreams.yaml")
    text = (EXAMPLES / "canaryroute.yaml").read_text()
    assert edit[0] in text
    (tmp_path / "canaryroute.yaml").write_text(text.replace(edit[0], edit[1], 1))
    assert main(["render", "-f", str(tmp_path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert expected in err and "CanaryRoute default/checkout" in err
    assert not (tmp_path / "out").exists()


def test_unreadable_input_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    assert main(["render", "-f", str(tmp_path / "bad.yaml"), "-o", str(tmp_path / "o")]) == 1
    assert "bad.yaml" in capsys.readouterr().err
    assert main(["render", "-f", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 1
