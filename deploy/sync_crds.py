"""Copy the CRDs from deploy/crds/ (the one source) into the Helm chart's crds/ directory, or check for drift.

    python deploy/sync_crds.py           # make the chart's copies identical to deploy/crds/
    python deploy/sync_crds.py --check   # exit 1 and name every differing file; change nothing

The chart's crds/ also holds files that are not Graylane's own (Kopf's peering CRDs); those are listed in
CHART_ONLY and left alone.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "deploy" / "crds"
CHART_CRDS_DIR = ROOT / "deploy" / "helm" / "graylane" / "crds"
CHART_ONLY = frozenset({"kopf.dev_peerings.yaml"})
CRD_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Drift:
    """What differs between deploy/crds/ and the chart's crds/ (file names)."""

    missing: tuple[str, ...]  # in the source, not in the chart
    changed: tuple[str, ...]  # in both, different bytes
    extra: tuple[str, ...]  # in the chart, not in the source (and not chart-only)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.changed or self.extra)

    def describe(self) -> str:
        lines = [f"missing from the chart: {name}" for name in self.missing]
        lines += [f"differs from deploy/crds/: {name}" for name in self.changed]
        lines += [f"not in deploy/crds/: {name}" for name in self.extra]
        return "\n".join(lines)


def _crd_files(directory: Path) -> dict[str, bytes]:
    if not directory.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name.endswith(CRD_SUFFIXES)}


def find_drift(*, source: Path = SOURCE_DIR, chart: Path = CHART_CRDS_DIR) -> Drift:
    """Compare the two directories; files in CHART_ONLY are ignored on the chart side."""
    src = _crd_files(source)
    dst = {name: data for name, data in _crd_files(chart).items() if name not in CHART_ONLY}
    return Drift(
        missing=tuple(sorted(set(src) - set(dst))),
        changed=tuple(sorted(name for name in set(src) & set(dst) if src[name] != dst[name])),
        extra=tuple(sorted(set(dst) - set(src))),
    )


def sync(*, source: Path = SOURCE_DIR, chart: Path = CHART_CRDS_DIR) -> Drift:
    """Make the chart's copies identical to the source; returns what was changed."""
    drift = find_drift(source=source, chart=chart)
    chart.mkdir(parents=True, exist_ok=True)
    src = _crd_files(source)
    for name in drift.missing + drift.changed:
        (chart / name).write_bytes(src[name])
    for name in drift.extra:
        (chart / name).unlink()
    return drift


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report drift and exit 1 instead of fixing it")
    args = parser.parse_args(argv)
    if args.check:
        drift = find_drift()
        if drift.clean:
            return 0
        print(drift.describe(), file=sys.stderr)
        print("run `make chart-sync` to copy deploy/crds/ into the chart", file=sys.stderr)
        return 1
    drift = sync()
    for name in drift.missing + drift.changed:
        print(f"copied deploy/crds/{name} into the chart")
    for name in drift.extra:
        print(f"removed {name} from the chart (no longer in deploy/crds/)")
    if drift.clean:
        print("chart CRDs already match deploy/crds/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
