"""The ``bottomup`` command line.

Each subcommand lives beside the stage it runs and exposes ``register(subparsers)``; this module
only collects them. ``bottomup --help`` lists them, ``bottomup CMD --help`` documents one.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "build_parser", "add_command", "add_job_arguments", "add_contours_argument",
           "run_job_from_args", "COMMANDS_GROUP"]

# Modules that define a ``register(subparsers)`` function, in the order --help shows them.
_COMMAND_MODULES: tuple[str, ...] = (
    "bottomup.demo",
    "bottomup._segment_cli",
    "bottomup.mcg._cli",
    "bottomup.metrics._cli",
    "bottomup.interactive._cli",
    "bottomup.annotate._cli",
)
#: Entry-point group of commands that other packages add (``deep`` adds ``bottomup deep``): each
#: entry point is a ``register(subparsers)`` function.
COMMANDS_GROUP = "bottomup.commands"


def add_command(subparsers, name: str, func, help: str, description: str) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` that runs ``func(args)``; ``description`` is shown as written."""
    p = subparsers.add_parser(name, help=help, description=description,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def add_job_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by every folder job."""
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): run on a cluster")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute outputs already in --out that were made with other parameters (or "
                        "have no record of theirs); without it such outputs stop the job before it starts, "
                        "and outputs of the same parameters are skipped (resume)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar and no first-run message; the one-line summary stays")


def run_job_from_args(task: str, args, ext: str, params: dict) -> int:
    """Run a folder job and print its summary; exit status 1 when an image failed, 2 when the job
    could not start (no images, outputs of other parameters without --overwrite, ...)."""
    from bottomup.jobs import run_job

    try:
        res = run_job(task, args.inputs, args.out, ext=ext, params=params, workers=args.workers,
                      scheduler=args.scheduler, progress=not args.quiet,
                      overwrite=getattr(args, "overwrite", False))
    except (FileNotFoundError, PermissionError, ValueError) as exc:
        print(f"bottomup {task}: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(res.done)} done, {len(res.skipped)} skipped (already done), {len(res.failed)} failed; "
          f"manifest: {res.manifest}")
    for rec in res.failed:
        print(f"  failed: {rec['input']}: {rec['error']}", file=sys.stderr)
    return 0 if res.ok else 1


def add_contours_argument(p: argparse.ArgumentParser) -> None:
    """``--contours NAME``, shared by the commands that build hierarchies."""
    from bottomup.contours import source_names

    p.add_argument("--contours", choices=source_names(), default="gpb",
                   help="contour source: gpb (default) or a registered one (learned: the CNN of the deep "
                        "extra, needs torch)")


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
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError:  # the package is there but its own needs (torch) are not
            continue
        register(sub)
    return parser


#: Numba kernels every run of a command compiles (``"module:function"``): when none of them has a
#: cache index yet, the command says on stderr that it compiles them first (once, 30-60 s).
_OWT_UCM = ("bottomup.owt._kernels:_trace_arcs_kernel", "bottomup.hierarchy._kernels:_greedy_merge_kernel")
HOT_KERNELS: dict[str, tuple[str, ...]] = {
    "segment": _OWT_UCM, "interactive": _OWT_UCM, "demo": _OWT_UCM,
    "proposals": (*_OWT_UCM, "bottomup.mcg._kernels:_dedup_kernel"),
    "deep": (*_OWT_UCM, "bottomup.mcg._kernels:_dedup_kernel"),
    "evaluate": ("bottomup.metrics._boundary_kernels:_boundary_counts_kernel",),
}


def kernels_cold(kernels) -> bool:
    """True when none of these numba kernels has an entry in numba's cache (a first run compiles).

    Cheap: imports the kernel modules (numba compiles lazily) and reads each kernel's cache index
    (a small file in ``__pycache__`` or ``$NUMBA_CACHE_DIR``). Unknown names and numba internals
    that differ count as warm, so the worst case is a missing message, never a wrong one.
    """
    found = False
    for spec in kernels:
        mod, name = spec.split(":")
        try:
            disp = getattr(importlib.import_module(mod), name)
            index = disp._cache._cache_file._load_index()  # {} when absent or stale
        except Exception:  # noqa: BLE001 - a numba without these internals: say nothing
            return False
        found = found or bool(index)
    return bool(kernels) and not found


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    if not getattr(args, "quiet", False) and kernels_cold(HOT_KERNELS.get(args.command, ())):
        print(f"bottomup {args.command}: compiling kernels, once, about 30-60 s (numba caches them for "
              f"the next runs)", file=sys.stderr)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
