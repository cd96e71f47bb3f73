"""The ``graylane`` command: ``render`` (compile manifests offline) and ``import ingress-nginx`` (migrate
canary Ingresses)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from graylane.cli import importer, render


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graylane", description="Graylane command-line tools")
    sub = parser.add_subparsers(dest="command", required=True)
    render.add_parser(sub)
    importer.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
