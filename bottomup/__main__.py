"""``python -m bottomup`` runs the command-line interface."""

from bottomup.cli import main

raise SystemExit(main())
