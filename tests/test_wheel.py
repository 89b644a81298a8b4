"""The wheel ships every file of the packages, and the installed layout finds its data.

The wheel is built with setuptools (the project's own build backend, no isolation) from a copy of
the package files in a temporary folder. Two checks:

* every file under ``bottomup/`` and ``deep/`` (tracked or new, not ignored by git) is in the
  wheel: a data file added without a matching ``package-data`` pattern fails here;
* the files the loaders read at run time (rankers, arc scorer, network weights) are in the wheel,
  and, unpacked outside the source tree, ``bottomup`` loads its rankers and arc scorer from there.

``.ci/wheel_check.sh`` goes further (fresh venv, demo, CLI) and takes minutes.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bottomup", "deep")


def _package_files() -> list[str]:
    """Files under the packages, relative to the root, that a wheel must ship."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--", *PACKAGES],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file on disk
        out = [p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return sorted(f for f in out if (ROOT / f).is_file())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for rel in ["pyproject.toml", "README.md", "LICENSE", *_package_files()]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    dist = tmp_path_factory.mktemp("dist")
    if _build_requirements_installed():  # the backend here, in a subprocess: ~3 s
        code = "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))"
        cmd = [sys.executable, "-c", code, str(dist)]
    else:  # pip with build isolation, as a user's build: ~10 s
        cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)]
    proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (whl,) = dist.glob("bottomup-*.whl")
    return whl


def _build_requirements_installed() -> bool:
    """Whether this environment's packages satisfy pyproject's ``build-system.requires``."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        import tomllib
        from packaging.requirements import Requirement
    except ImportError:
        return False
    reqs = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for req in map(Requirement, reqs):
        try:
            if not req.specifier.contains(version(req.name), prereleases=True):
                return False
        except PackageNotFoundError:
            return False
    return True


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def test_every_package_file_is_in_the_wheel(wheel):
    files = _package_files()
    data = [f for f in files if not f.endswith(".py")]
    # the data this check is about (a guard against an empty or mis-rooted file list)
    assert {"deep/weights/contours_lite0.pt", "deep/weights/heads_msrc21.pt",
            "deep/weights/maskrcnn_msrc21.pt", "bottomup/owt/data/arcs_learned.npz",
            "bottomup/owt/data/arcs_gpb.npz", "bottomup/mcg/data/scg_ranker.npz"} <= set(data)
    missing = sorted(set(files) - _names(wheel))
    assert not missing, f"missing from {wheel.name} (add them to package-data): {missing}"


def test_license_file():
    text = (ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause" in text and "the bottomup authors" in text and "2026" in text


def test_license_in_wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        import bottomup

        info = f"bottomup-{bottomup.__version__}.dist-info"
        meta = z.read(f"{info}/METADATA").decode()
        assert "License-Expression: BSD-3-Clause" in meta
        assert z.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()


def _runtime_data_files(monkeypatch) -> set[str]:
    """Paths (relative to the root) of the files the loaders read by default."""
    from bottomup.mcg import ranking
    from bottomup.owt import arc_scores

    paths = {ranking.ranker_path(*key) for key in ranking.RANKER_FILES}
    seen = []
    monkeypatch.setattr(arc_scores, "_read_scorer", lambda p: seen.append(p))
    arc_scores.load_arc_scorer()
    paths.update(str(p) for p in seen)
    pytest.importorskip("torch")
    from deep import segmenter
    from deep.contours import net

    paths.update({segmenter.weights_path(), segmenter.maskrcnn_weights_path(), str(net.WEIGHTS_FILE)})
    return {Path(p).resolve().relative_to(ROOT).as_posix() for p in paths}


def test_files_loaded_at_run_time_are_in_the_wheel(wheel, monkeypatch):
    loaded = _runtime_data_files(monkeypatch)
    assert len(loaded) == 9, loaded  # 5 rankers, the arc scorer, the three weights files
    missing = sorted(loaded - _names(wheel))
    assert not missing, f"loaded at run time but not in the wheel: {missing}"


def test_unpacked_wheel_loads_its_data_outside_the_tree(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    code = (
        "import os, sys\n"
        "import bottomup\n"
        "from bottomup.mcg.ranking import load_ranker, ranker_path\n"
        "from bottomup.owt import load_arc_scorer\n"
        "site = os.path.realpath(sys.argv[1])\n"
        "assert os.path.realpath(bottomup.__file__).startswith(site), bottomup.__file__\n"
        "from bottomup.mcg.ranking import RANKER_FILES\n"
        "for key in RANKER_FILES:\n"
        "    assert ranker_path(*key).startswith(sys.argv[1])\n"
        "    load_ranker(ranker_path(*key))\n"
        "load_arc_scorer()\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    run = tmp_path / "run"
    run.mkdir()
    proc = subprocess.run([sys.executable, "-c", code, str(site)], cwd=run, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
