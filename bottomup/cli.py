"""The ``bottomup`` command line.

Each subcommand lives beside the stage it runs and exposes ``register(subparsers)``; this module
only collects them. ``bottomup --help`` lists them, ``bottomup CMD --help`` documents one.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that define a ``register(subparsers)`` function, in the order --help shows them.
_COMMAND_MODULES: tuple[str, ...] = (
    "bottomup.demo",
    "bottomup._segment_cli",
    "bottomup._deep_cli",
    "bottomup.mcg._cli",
    "bottomup.metrics._cli",
    "bottomup.interactive._cli",
    "bottomup.annotate._cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="bottomup",
        description=(
            "Bottom-up segmentation: gPb contours, OWT-UCM hierarchies, MCG proposals and the "
            "exact BSDS benchmark."
        ),
    )
    from bottomup import __version__

    parser.add_argument("--version", action="version", version=f"bottomup {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
