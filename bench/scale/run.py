"""``make bench-scale``: Graylane at 10,000 routes -- every row of issue 18, before (the issue's figures,
measured on main) and after (measured now, in this run).

Parts (``--parts``, default all, in this order); the operator's rows are ``operator.py``
(``make bench-scale`` runs it after this):

* ``offline``: generate the manifests (``generate.py``), ``graylane render`` them, the file-mode proxy
  (start, RSS, one change, a 1 MiB document, a burst, an invalid document among them), ``decide`` at 10 and N.
* ``kube``: N route ConfigMaps on the local test control plane; a kube-mode proxy (start, RSS, one change,
  a burst of 1,000 PATCHes).
* ``fanout``: ``--proxies`` kube-mode proxies following the N ConfigMaps (heavy: run it once, last).

The figures land in ``.graylane/bench-scale.json`` and in a table; the machine's load average is printed
with them (the build machines are shared: compare CPU seconds when the wall clock is noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: kubebench (and tests/ through it)

import generate
import kubebench
import offline
import report
from common import ROOT, Results, load_average

PARTS = ("offline", "kube", "fanout")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--routes", type=int, default=10_000)
    parser.add_argument("--proxies", type=int, default=20, help="kube-mode proxies in the fan-out part")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    parser.add_argument("--changes", type=int, default=50, help="single-route changes timed per mode")
    parser.add_argument("--kubeconfig", help="a cluster to use instead of a fresh local control plane")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (manifests, documents, logs)"
    )
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    work = Path(tempfile.mkdtemp(prefix="graylane-scale-"))
    results = Results()
    print(f"bench-scale: {args.routes} routes, work in {work}, load average {load_average()}", flush=True)
    try:
        run(args, parts, work, results)
    finally:
        results.note(f"load average at the end: {load_average()}")
        out = ROOT / ".graylane" / "bench-scale.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps({"routes": args.routes, "at": time.strftime("%Y-%m-%d %H:%M"),
                                   **results.values, "notes": results.notes}, indent=2))  # fmt: skip
        print(report.table(results.values, routes=args.routes))
        for note in results.notes:
            print(f"  - {note}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if report.met(results.values) else 1


def run(args: argparse.Namespace, parts: list[str], work: Path, results: Results) -> None:
    objects_path, docs, logs = work / "objects.json", work / "docs", work / "logs"
    logs.mkdir()
    generate.write_list(objects_path, args.routes)
    offline.render(objects_path, docs, results)
    if "offline" in parts:
        print("== file mode, decide", flush=True)
        offline.base_rss(logs, results)
        offline.file_mode(docs, logs, results, changes=args.changes)
        offline.decide_rows(docs, results)
    cluster_parts = [p for p in parts if p != "offline"]
    if cluster_parts:
        objects = json.loads(objects_path.read_text())["items"]
        asyncio.run(on_cluster(args, cluster_parts, docs, objects, logs, results))


async def on_cluster(args: argparse.Namespace, parts: list[str], docs: Path, objects: list[dict[str, Any]],
                     logs: Path, results: Results) -> None:  # fmt: skip
    import kube
    from api import Api

    with kubebench.control_plane(args.kubeconfig) as (plane, kubectl):
        apiserver = plane.procs["kube-apiserver"].pid if plane is not None else None
        kubeconfig = Path(kubectl.kubeconfig)
        async with Api(kubeconfig) as api:
            config_ns = kubebench.namespace(kubectl, "scale-graylane")
            if "kube" in parts or "fanout" in parts:
                cms = kube.configmaps(docs, config_ns)
                started = time.monotonic()
                await api.create_all(cms)
                results.note(f"{len(cms)} route ConfigMaps created in {time.monotonic() - started:.0f} s")
                await kube.update_bytes(api, cms, config_ns, results)
            if "kube" in parts:
                print("== kube mode", flush=True)
                await kube.one_proxy(api, cms, config_ns, kubeconfig, logs, results, changes=args.changes)
            if "fanout" in parts:
                print(f"== fan-out: {args.proxies} proxies", flush=True)
                await kube.fan_out(api, cms, config_ns, kubeconfig, logs, apiserver, results,
                                   proxies=args.proxies, patches=20)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
