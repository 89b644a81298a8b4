"""README.md holds runnable snippets only (issue 26, item 6): its ```python blocks run in order in
one namespace, and its cheap ```bash commands run on a small photo, making every file the README
says they write; it stays under 200 lines."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"
#: Shell lines the test does not run, with the reason; any other line must be a `bottomup` command.
NOT_RUN = {
    "pip install": "installation (.ci/run does it on a clean clone)",
    "pytest": "the test suite itself",
    "bottomup demo": "tests/test_demo.py runs the demo",
}


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_readme_is_short_and_has_the_snippets():
    assert len(README.read_text().splitlines()) <= 200
    assert len(blocks("python")) >= 3 and blocks("bash")


def _photo(path: Path) -> None:
    """The README's `photo.jpg`: scikit-image's coffee at 100x150 (small, so the test is quick)."""
    import cv2
    from skimage import data, transform

    img = transform.rescale(data.coffee(), 0.25, channel_axis=-1, anti_aliasing=True)
    cv2.imwrite(str(path), np.round(img[..., ::-1] * 255).astype(np.uint8))


def _commands() -> list[list[str]]:
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or any(line.startswith(p) for p in NOT_RUN):
                continue
            assert line.startswith("bottomup "), f"README shell line neither run nor known: {line!r}"
            out.append(shlex.split(line)[1:])
    return out


def test_readme_python_snippets_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "readme"}
    for code in blocks("python"):
        if re.search(r"^import deep", code, flags=re.M) and importlib.util.find_spec("torch") is None:
            continue  # the `deep` extra is not installed here
        exec(compile(code, "README.md", "exec"), ns)  # noqa: S102 - the README's own code
    # what the snippets claim in their comments
    h, labels = ns["h"], ns["labels"]
    assert labels.max() + 1 == 20 and Path("coffee_overlay.png").is_file()
    back = ns["h_back"].cut(n_regions=20)
    assert len(set(zip(back.ravel().tolist(), labels.ravel().tolist(), strict=True))) == 20  # same cut
    assert ns["seg"].shape == labels.shape and set(np.unique(ns["seg"])) == {1, 2}
    from bottomup import ucm

    np.testing.assert_array_equal(ns["h_sobel"].to_ucm2(), ucm(*ns["sobel_edges"](ns["image"])).to_ucm2())
    assert h.shape == (100, 150)
    if "sem_crf" in ns:  # the heads' CRF pass: MSRC-21 labels of the image's shape
        assert ns["sem_crf"].shape == ns["sem"].shape == (100, 150) and ns["sem_crf"].max() < 21
    if "cands" in ns:
        printed = capsys.readouterr().out
        assert printed.startswith("Candidates(n=100, shape=(100, 150)") and len(printed) < 120


def test_readme_commands_run(tmp_path, monkeypatch, capsys):
    import cv2

    from bottomup.cli import main

    monkeypatch.chdir(tmp_path)
    _photo(tmp_path / "photo.jpg")
    scribbles = np.zeros((100, 150), np.uint8)
    scribbles[60, 110], scribbles[10, 10] = 1, 2
    cv2.imwrite(str(tmp_path / "scribbles.png"), scribbles)
    commands = _commands()
    assert any(c[:1] == ["segment"] and "--cut" in c for c in commands)
    for argv in commands:
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    # every file the README says these commands write
    text = README.read_text()
    said = set(re.findall(r"`((?:seg/|props/)?photo[\w.]*\.(?:png|mat|json))`", text))
    assert {"props/photo.json", "photo_labels_overlay.png", "photo_overlay.png", "photo_labels.png"} <= said
    for name in said:  # a bare name is in seg/ (the paragraph on it) or beside the photo
        where = [Path(name)] if "/" in name else [Path("seg") / name, Path(name)]
        assert any(p.is_file() for p in where), f"the README says a command writes {name}"
