"""``graylane import ingress-nginx`` as users run it: files, directories and stdin in; one commented YAML file
per route out; findings on stderr, the summary last on stdout; errors (and warnings with --strict) write
nothing. The cluster side (``--from-cluster``, ``kubectl apply --dry-run=server``) is
tests/cli/test_import_cluster.py; the behaviour of the output is tests/proxy/test_import_behaviour.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ingress_manifests import dump, pair

from graylane.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ingress-nginx"
BAD = ROOT / "tests" / "bad_inputs" / "ingress-nginx"
GRAYLANE = Path(sys.executable).with_name("graylane")


def graylane(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GRAYLANE), *args], input=stdin, capture_output=True, text=True, check=False, cwd=cwd
    )


def test_the_example_imports_and_renders(tmp_path: Path) -> None:
    result = graylane("import", "ingress-nginx", "-f", str(EXAMPLE), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["shop.checkout.yaml"]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"wrote {tmp_path / 'out' / 'shop.checkout.yaml'}: CanaryRoute shop/checkout")
    assert "weight 10 (per-request random)" in lines[0]
    assert lines[-1] == f"summary: 1 route written to {tmp_path / 'out'}, 1 warning, 0 errors, 0 notes"
    assert result.stderr.startswith("warning: Ingress shop/checkout: metadata.annotations[nginx.ingress")
    text = (tmp_path / "out" / "shop.checkout.yaml").read_text()
    assert text.startswith("# Imported from ingress-nginx") and "#   Ingress shop/checkout: metadata" in text
    kinds = [d["kind"] for d in yaml.safe_load_all(text)]
    assert kinds == ["Upstream", "Upstream", "CanaryRoute"]
    rendered = graylane("render", "-f", str(tmp_path / "out"), "-o", str(tmp_path / "rendered"))
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "rendered" / "shop.checkout.json").is_file()


def test_stdin_and_several_sources(tmp_path: Path) -> None:
    other = pair({"canary-by-header": "X-Beta"}, host="beta.example.com")
    for obj in other:
        obj["metadata"]["name"] += "-beta"
    result = graylane("import", "ingress-nginx", "-f", "-", "-f", str(EXAMPLE), "-o", str(tmp_path / "o"),
                      stdin=dump(other))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "shop.checkout-beta.yaml",
        "shop.checkout.yaml",
    ]


def test_namespace_option_for_objects_without_one(tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text(dump(pair({"canary-weight": "5"}, namespace=None)))
    assert main(["import", "ingress-nginx", "-f", str(tmp_path / "in.yaml"), "-o", str(tmp_path / "o"),
                 "-n", "team-x"]) == 0  # fmt: skip
    (route,) = [d for d in yaml.safe_load_all((tmp_path / "o" / "team-x.checkout.yaml").read_text())
                if d["kind"] == "CanaryRoute"]  # fmt: skip
    assert route["metadata"]["namespace"] == "team-x"


@pytest.mark.parametrize("case", ["pattern-lookahead", "no-main", "two-canaries", "weight-not-integer"])
def test_errors_exit_1_and_write_nothing(tmp_path: Path, case: str) -> None:
    result = graylane("import", "ingress-nginx", "-f", str(BAD / f"{case}.yaml"), "-o", str(tmp_path / "o"))
    assert result.returncode == 1
    header = {k: v.strip() for k, _, v in (line[2:].partition(":") for line in
              (BAD / f"{case}.yaml").read_text().splitlines() if line.startswith("# "))}  # fmt: skip
    assert any(line.startswith("error: ") and header["expect"] in line and header["message"] in line
               for line in result.stderr.splitlines()), result.stderr  # fmt: skip
    assert result.stdout.strip().splitlines()[-1].startswith("summary: nothing written (0 routes ready)")
    assert not (tmp_path / "o").exists()


def test_strict_makes_warnings_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["import", "ingress-nginx", "-f", str(EXAMPLE), "-o", str(tmp_path / "o")]
    assert main([*args, "--strict"]) == 1
    out, err = capsys.readouterr()
    assert (
        "error: Ingress shop/checkout: metadata.annotations[nginx.ingress.kubernetes.io/proxy-body-size]"
        in err
    )
    assert out.strip().endswith("summary: nothing written (1 route ready), 0 warnings, 1 error, 0 notes")
    assert not (tmp_path / "o").exists()
    assert main(args) == 0 and (tmp_path / "o" / "shop.checkout.yaml").is_file()


def test_sticky_and_service_versions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "ingress-nginx", "-f", str(EXAMPLE), "-o", str(tmp_path / "o"), "--sticky",
                 "cookie:session", "--service-version", "shop/checkout-v2=2.0.0"]) == 0  # fmt: skip
    assert "weight 10 (sticky on cookie:session)" in capsys.readouterr().out
    docs = list(yaml.safe_load_all((tmp_path / "o" / "shop.checkout.yaml").read_text()))
    assert [d["spec"].get("metadata") for d in docs[:2]] == [{"version": "v1"}, {"version": "2.0.0"}]
    assert docs[2]["spec"]["sticky"] == {"keys": ["cookie:session"]}
    text = (tmp_path / "o" / "shop.checkout.yaml").read_text()
    assert "sticky on cookie:session (ingress-nginx drew per request)" in text


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--service-version", "checkout-v2"], "expected SERVICE=VERSION"),
        (["--from-cluster", "-f", "x.yaml"], "not allowed with argument"),
        ([], "one of the arguments -f/--filename --from-cluster is required"),
    ],
)
def test_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    if args[:1] == ["--service-version"]:
        args = [*args, "-f", str(EXAMPLE)]
    with pytest.raises(SystemExit) as exited:
        main(["import", "ingress-nginx", "-o", str(tmp_path / "o"), *args])
    assert exited.value.code == 2 and words in capsys.readouterr().err


def test_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    assert main(["import", "ingress-nginx", "-f", str(tmp_path / "bad.yaml"), "-o", str(tmp_path / "o")]) == 1
    assert "bad.yaml: cannot read manifests" in capsys.readouterr().err


def test_the_readme_before_and_after_is_what_the_command_writes(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Migrating from ingress-nginx", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("\n", 1)[1] for b in section.split("```")[1::2]]
    before, console, after = blocks[0], blocks[1], blocks[2]
    canary = list(yaml.safe_load_all((EXAMPLE / "checkout.yaml").read_text()))[1]
    shown = yaml.safe_load(before)
    assert shown["metadata"]["annotations"] == canary["metadata"]["annotations"]
    assert shown["spec"]["rules"] == canary["spec"]["rules"]
    result = graylane("import", "ingress-nginx", "-f", str(EXAMPLE), "-o", "imported/", cwd=tmp_path)
    printed = [line for line in console.splitlines() if not line.startswith("$")]
    assert printed == (result.stderr + result.stdout).splitlines()
    route = [d for d in yaml.safe_load_all((tmp_path / "imported" / "shop.checkout.yaml").read_text())][2]
    assert yaml.safe_load(after) == {**route, "metadata": {"name": "checkout", "namespace": "shop"}}
