"""BSDS500 benchmark over a folder of predictions (boundary ODS/OIS/AP/R50, Covering/PRI/VI).

    python bench/bsds.py --pred DIR --gt DIR --json OUT.json [--plot OUT.png] [--workers N] [--ids FILE]

The same as ``bottomup evaluate``; see ``--help``.
"""

import sys

from bottomup.metrics._cli import main

if __name__ == "__main__":
    sys.exit(main())
