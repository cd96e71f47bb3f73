"""Where the proxy's time and memory go when it loads N route documents (``docs/performance.md``).

Builds the proxy's :class:`RouteState` exactly as ``create_app`` does, offers every ``*.json`` of a rendered
directory (what file mode and a kube list do) and reports:

* ``--mode time``: cProfile of the load, the top functions by cumulative and by own time;
* ``--mode memory``: tracemalloc of what stays allocated after the load (per route), grouped by the line
  that allocated it, and the RSS growth.

    python bench/scale/profile_proxy.py DOCS_DIR --mode memory
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import sys
import time
import tracemalloc
from pathlib import Path

from graylane.proxy.admin.pages import STATE
from graylane.proxy.app import create_app
from graylane.proxy.settings import Settings


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def read_all(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.json"))}


async def load(docs: dict[str, bytes]) -> object:
    app = create_app(Settings(listen_port=0, admin_port=0))
    state = app[STATE]
    state.apply(docs)
    state.synced = True
    return app


def profile_time(docs: dict[str, bytes], top: int) -> None:
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    asyncio.run(load(docs))
    profiler.disable()
    print(f"load of {len(docs)} documents: {time.perf_counter() - started:.2f} s (under cProfile)")
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(top)
        print(out.getvalue())


def profile_memory(docs: dict[str, bytes], top: int) -> None:
    gc.collect()
    before_rss = rss_kib()
    tracemalloc.start(8)
    base = tracemalloc.take_snapshot()

    async def keep() -> object:
        return await load(docs)

    loop = asyncio.new_event_loop()
    app = loop.run_until_complete(keep())
    gc.collect()
    after = tracemalloc.take_snapshot()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    growth = rss_kib() - before_rss
    n = max(len(docs), 1)
    print(f"{len(docs)} routes: traced {traced / 1024:.0f} KiB = {traced / n / 1024:.2f} KiB/route; "
          f"RSS growth {growth} KiB = {growth / n:.2f} KiB/route (tracemalloc's records too)")  # fmt: skip
    stats = after.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)]).compare_to(base, "lineno")
    print(f"\ntop {top} allocation sites still alive (bytes per route):")
    for stat in stats[:top]:
        frame = stat.traceback[0]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        print(f"  {stat.size_diff / n:8.0f} B  {stat.count_diff / n:6.1f} blocks  {where}")
    del app
    loop.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("docs", type=Path, help="a directory of rendered route documents")
    parser.add_argument("--mode", choices=("cpu", "time", "memory"), default="memory")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--gc",
        choices=("default", "proxy", "off"),
        default="proxy",
        help="collector settings: Python's, the proxy's (graylane-proxy's cli), or disabled",
    )
    args = parser.parse_args()
    docs = read_all(args.docs)
    if args.gc == "proxy":
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
    elif args.gc == "off":
        gc.disable()
    if args.mode == "cpu":
        started, cpu = time.perf_counter(), time.process_time()
        asyncio.run(load(docs))
        print(f"load of {len(docs)} documents: {time.perf_counter() - started:.2f} s wall, "
              f"{time.process_time() - cpu:.2f} s CPU (no profiler)")  # fmt: skip
    elif args.mode == "time":
        profile_time(docs, args.top)
    else:
        profile_memory(docs, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
