"""The real-data tiers (``slow``, ``regression``) fail instead of skipping when ``$CI`` is set and
the data is absent; everything else still skips (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent / "conftest.py"

_TIERS = '''
import pytest

@pytest.mark.slow
def test_slow(bsds_root):
    pass

@pytest.mark.regression
def test_regression(msrc_root):
    pass

def test_fast(bsds_root, reference_dir):
    pass
'''


@pytest.mark.parametrize("ci, data, outcomes", [
    (None, False, {"skipped": 3}),
    ("false", False, {"skipped": 3}),
    ("true", False, {"errors": 2, "skipped": 1}),  # pytest.fail in a fixture: an error, exit 1
    ("true", True, {"passed": 3}),
])
def test_real_data_tiers_fail_under_ci_without_data(pytester, monkeypatch, tmp_path, ci, data, outcomes):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    slow: s\n    regression: r\n")
    pytester.makepyfile(test_tiers=_TIERS)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    if data:
        root = tmp_path / "shared" / "data"
        for sub in ("bsds500", "msrc"):
            (root / sub).mkdir(parents=True)
        (tmp_path / "shared" / "reference").mkdir()
        monkeypatch.setenv("BOTTOMUP_DATA", str(root))
    else:
        monkeypatch.delenv("BOTTOMUP_DATA", raising=False)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rfs")
    result.assert_outcomes(**outcomes)
    assert (result.ret != 0) == ("errors" in outcomes)
    if outcomes.get("errors"):
        result.stdout.fnmatch_lines(["*BSDS500 data not found*CI is set and this is a slow test*",
                                     "*MSRC data not found*CI is set and this is a regression test*"])
