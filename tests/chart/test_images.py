"""The images: the Dockerfiles as written, and the archives `make images` builds from them, checked for real.

The built archives are unpacked as the node would and their entry points run as UID/GID 10001 on a read-only
root (``imagefs.confined``): the operator and proxy CLIs, and the proxy image routing to two demo-backend
containers. The build is cached (``deploy/images``); ``make test`` builds before pytest runs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_render import CHART_DIR, ROOT

sys.path.insert(0, str(ROOT / "deploy"))  # the `images` package (deploy/images)
sys.path.insert(0, str(ROOT / "tests" / "proxy"))  # route documents for the proxy image
import imagefs
from cluster.ports import free_port
from images import archives as image_archives
from images import build as image_build
from images import context, wheels
from proxytest import dump, route_doc, rule

pytestmark = pytest.mark.timeout(3600)  # a cold build (Debian bases, mypyc in the proxy image) takes minutes
DOCKER_DIR = ROOT / "deploy" / "docker"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|clang|python3?-dev|libc6-dev)\b")
COMPILERS = ("usr/bin/gcc", "usr/bin/cc", "usr/bin/x86_64-linux-gnu-gcc", "usr/bin/c++", "usr/bin/ld")
PIP = re.compile(r"pip(3(\.\d+)?)?|pip-\S+\.(whl|dist-info)")  # the package, its scripts, wheels, metadata
VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())


def _final_stage(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert len(starts) >= 2, "expected a build stage and a final stage"
    return lines[starts[-1] :]


@pytest.mark.parametrize("component", image_build.COMPONENTS)
def test_dockerfile_final_stage_is_slim_and_non_root(component: str) -> None:
    text = (DOCKER_DIR / f"Dockerfile.{component}").read_text()
    final = _final_stage(text)
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.\d+-slim", text), "slim Python base by default"
    uid, gid = VALUES["securityContext"]["runAsUser"], VALUES["securityContext"]["runAsGroup"]
    assert [line.split()[1] for line in final if line.upper().startswith("USER ")] == [f"{uid}:{gid}"]
    assert not any(BUILD_TOOLS.search(line) for line in final), "no build tools in the final image"
    assert not any(line.upper().startswith("ADD ") for line in final)


@pytest.mark.parametrize("component", ["operator", "proxy"])
def test_dockerfile_runs_the_entry_point_the_chart_uses(component: str) -> None:
    (entry,) = [line for line in _final_stage((DOCKER_DIR / f"Dockerfile.{component}").read_text())
                if line.upper().startswith("ENTRYPOINT ")]  # fmt: skip
    assert json.loads(entry.split(" ", 1)[1]) == [f"graylane-{component}"]
    assert (
        f"graylane-{component}" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    )
    assert VALUES[component]["image"]["repository"] == f"graylane/graylane-{component}"


def test_build_contexts_hold_only_what_the_dockerfiles_copy() -> None:
    operator, proxy, demo = (set(image_build.context_for(c)) for c in ("operator", "proxy", "demo-backend"))
    assert {
        "pyproject.toml",
        "README.md",
        "graylane/cli/render.py",
        "operator/cli.py",
        "proxy/cli.py",
    } <= operator
    assert "deploy/native/build.py" in proxy and "deploy/native/build.py" not in operator
    assert demo == {"tests/upstream_app.py"}
    for files in (operator, proxy):
        assert not [
            f for f in files if f.endswith((".so", ".pyc")) or "__pycache__" in f or f.startswith(".")
        ]


def test_ignore_rules_follow_docker() -> None:
    rules = context.parse_ignore("*\n!src/\n**/*.so\n!src/keep.so\nsrc/**/gen\n")
    assert context.admitted("src/a/b.py", rules) and context.admitted("src/keep.so", rules)
    assert not context.admitted("top.txt", rules) and not context.admitted("src/x/y.so", rules)
    assert not context.admitted("src/a/gen/z.py", rules) and not context.admitted("srcx/a.py", rules)


def test_wheel_set_covers_every_pip_install_in_the_dockerfiles() -> None:
    proxy = wheels.dockerfile_requirements((DOCKER_DIR / "Dockerfile.proxy").read_text())
    demo = wheels.dockerfile_requirements((DOCKER_DIR / "Dockerfile.demo-backend").read_text())
    assert proxy == ["mypy", "setuptools"] and demo == ["aiohttp>=3.10"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {
        *project["project"]["dependencies"],
        *project["build-system"]["requires"],
        "mypy",
        "aiohttp>=3.10",
    }
    assert needed <= set(image_build.requirements())


# -- the built images ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built() -> dict[str, Path]:
    return image_build.ensure_images()


@pytest.fixture(scope="module")
def unpacked(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    out = {}
    for component in image_build.COMPONENTS:
        rootfs = tmp_path_factory.mktemp(f"rootfs-{component}")
        out[component] = (rootfs, imagefs.unpack(built[image_build.image_ref(component)], rootfs))
    return out


def test_archives_carry_the_chart_tags(built: dict[str, Path]) -> None:
    version = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["appVersion"]
    refs = [f"graylane/graylane-{c}:{version}" for c in image_build.COMPONENTS]
    assert list(built) == refs
    for ref, archive in built.items():
        tags = imagefs.manifest(archive)["RepoTags"]
        assert [tag.removeprefix("docker.io/") for tag in tags] == [ref]  # containerd adds docker.io/ to refs
        record = image_archives.read_record(archive)
        assert record is not None and record.ref == ref
        assert 0 < record.gzip_bytes < record.layers_bytes < 400e6, f"{ref}: {record}"


def test_a_second_build_reuses_the_archives(built: dict[str, Path]) -> None:
    stamps = {ref: archive.stat().st_mtime_ns for ref, archive in built.items()}
    again = image_build.ensure_images()
    assert again == built
    assert {ref: archive.stat().st_mtime_ns for ref, archive in again.items()} == stamps


@pytest.mark.parametrize("component", image_build.COMPONENTS)
def test_final_image_has_user_10001_and_no_pip_or_compiler(
    unpacked: dict[str, tuple[Path, Any]], component: str
) -> None:
    rootfs, config = unpacked[component]
    assert config["config"]["User"] == "10001:10001"
    assert not [p for p in COMPILERS if (rootfs / p).exists()], "a compiler in the final image"
    pips = [p for p in rootfs.glob("**/pip*") if PIP.fullmatch(p.name)]
    assert not pips, f"pip in the final image: {pips[:5]}"
    assert (rootfs / "usr/bin/python3").exists() or (rootfs / "usr/local/bin/python3").exists()


def test_only_the_proxy_image_has_the_compiled_hot_path(unpacked: dict[str, tuple[Path, Any]]) -> None:
    """Built by mypyc inside the proxy image; the host's `make native` output never enters a context."""
    (proxy,) = unpacked["proxy"][0].glob("opt/graylane/lib/python3*/site-packages/graylane")
    (operator,) = unpacked["operator"][0].glob("opt/graylane/lib/python3*/site-packages/graylane")
    compiled = {str(so.relative_to(proxy)).split(".cpython")[0] for so in proxy.glob("**/*.cpython-3*.so")}
    assert compiled - {"_native__mypyc"} == _native_modules(), sorted(compiled)  # + the shared runtime
    assert not list(operator.glob("**/*.so"))


def _native_modules() -> set[str]:
    """What ``deploy/native/build.py`` compiles, as paths under the installed ``graylane`` package."""
    spec = importlib.util.spec_from_file_location("native_build", ROOT / "deploy" / "native" / "build.py")
    assert spec is not None and spec.loader is not None
    native = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(native)
    return {
        "/".join([*package.split(".")[1:], *module.split(".")])
        for _, package, modules in native.COMPILED
        for module in modules
    }


def _run(
    rootfs: Path, tmp: Path, config: Any, args: list[str], **kw: Any
) -> subprocess.CompletedProcess[str]:
    cmd = imagefs.confined(rootfs, tmp, config, args, **kw)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("component", ["operator", "proxy"])
def test_entry_point_runs_as_10001_on_a_read_only_root(
    unpacked: dict[str, tuple[Path, Any]], component: str, tmp_path: Path
) -> None:
    rootfs, config = unpacked[component]
    tmp_path.chmod(0o777)  # like the chart's emptyDir at /tmp
    helped = _run(rootfs, tmp_path, config, ["--help"])
    assert helped.returncode == 0, helped.stderr
    assert f"graylane-{component}" in helped.stdout
    probe = "import os; print(os.getuid(), os.getgid()); open('/opt/probe', 'w')"
    wrote = _run(rootfs, tmp_path, config, ["-c", probe], entrypoint=["python"])
    assert wrote.stdout.split() == ["10001", "10001"]
    assert "Read-only file system" in wrote.stderr


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []
    tmp_path.chmod(0o777)

    def start(rootfs: Path, config: Any, args: list[str]) -> subprocess.Popen[str]:
        cmd = imagefs.confined(rootfs, tmp_path, config, args)
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        return procs[-1]

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)


def _get(url: str, headers: dict[str, str] | None = None) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
        return str(response.read().decode())


def _wait(proc: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            _get(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def test_proxy_image_routes_between_two_demo_backend_containers(
    unpacked: dict[str, tuple[Path, Any]], spawn: Any, tmp_path: Path
) -> None:
    (demo_root, demo), (proxy_root, proxy) = unpacked["demo-backend"], unpacked["proxy"]
    ports = {name: free_port() for name in ("v1", "v2", "proxy", "admin")}
    for name in ("v1", "v2"):
        args = ["--name", name, "--host", "127.0.0.1", "--port", str(ports[name])]
        _wait(spawn(demo_root, demo, args), f"http://127.0.0.1:{ports[name]}/__control")
    conf = tmp_path / "routes"
    conf.mkdir()
    qa = rule("qa", "canary", headers=[{"name": "X-Canary", "exact": "true"}])
    doc = route_doc(f"http://127.0.0.1:{ports['v1']}", f"http://127.0.0.1:{ports['v2']}", rules=[qa])
    (conf / "checkout.json").write_text(dump(doc))
    listen = ["--listen", f"127.0.0.1:{ports['proxy']}", "--admin-listen", f"127.0.0.1:{ports['admin']}"]
    _wait(
        spawn(proxy_root, proxy, ["--config-dir", "/tmp/routes", *listen]),
        f"http://127.0.0.1:{ports['admin']}/readyz",
    )
    url = f"http://127.0.0.1:{ports['proxy']}/echo"
    assert json.loads(_get(url))["version"] == "v1"
    canary = json.loads(_get(url, {"X-Canary": "true"}))
    assert canary["version"] == "v2" and canary["headers"]["X-Graylane-Track"] == "canary"
