"""Root pytest configuration: names available to every doctest."""

import numpy as np
import pytest

# `pytester` runs the tier rules of tests/conftest.py in a throw-away folder (tests/regression/test_pins.py).
pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace["np"] = np


# Helper modules of the test tree are imported by tests, not collected (doctest collection would
# import two different `naive.py` files under one name).
collect_ignore_glob = [
    "tests/naive*.py", "tests/*/naive*.py", "tests/*/deep_testing.py", "tests/jobs_tasks.py",
    "tests/hostile_files.py",
]

# The web app's modules import Starlette (the `app` extra): without it, do not collect them as
# doctests (tests/test_annotate*.py skip themselves with the reason).
try:
    import starlette  # noqa: F401
except ImportError:
    collect_ignore_glob.append("bottomup/annotate/server.py")
