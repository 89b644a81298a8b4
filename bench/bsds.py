"""BSDS500 benchmark over a folder of predictions (boundary ODS/OIS/AP/R50, Covering/PRI/VI).

    python bench/bsds.py --pred DIR --gt DIR --json OUT.json [--plot OUT.png] [--workers N] [--ids FILE]

The same program as ``bottomup evaluate`` (this script runs it); see ``bottomup evaluate --help``.
"""

import sys

from bottomup.cli import main as bottomup_main


def main(argv=None) -> int:
    """Run ``bottomup evaluate`` with ``argv`` (default: this script's arguments)."""
    return bottomup_main(["evaluate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
