"""Contour sources and the policy they carry (``bottomup.contours.source``), and ``segment``'s face."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from scipy import ndimage as ndi

import bottomup
from bottomup.contours import ContourSource, GPb, Multiscale, Ridge, get_source
from bottomup.hierarchy import ucm
from bottomup.owt import ridge_owt_inputs


def sobel(image):
    """A user's edge detector: Sobel magnitude and its 8 oriented projections."""
    g = image.mean(axis=2)
    gr, gc = ndi.sobel(g, 0), ndi.sobel(g, 1)
    mag = np.hypot(gr, gc)
    mag /= max(mag.max(), 1e-12)
    theta = np.arange(8) * np.pi / 8
    ori = np.abs(np.cos(theta)[:, None, None] * gc + np.sin(theta)[:, None, None] * gr)
    return mag, ori / max(ori.max(), 1e-12)


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    img = np.zeros((48, 64, 3))
    img[:, 30:] = [0.9, 0.2, 0.1]
    img[10:30, 5:20] = [0.1, 0.3, 0.9]
    return np.clip(img + 0.05 * rng.standard_normal(img.shape), 0, 1)


def test_segment_takes_at_most_four_parameters():
    assert len(inspect.signature(bottomup.segment).parameters) <= 4


def test_plain_callable_is_exactly_ucm_of_its_output(photo):
    """"Any edge map -> OWT -> UCM": a plain callable gets the documented OWT-UCM rule."""
    got = bottomup.segment(photo, contours=sobel).to_ucm2()
    want = bottomup.ucm(*sobel(photo)).to_ucm2()
    np.testing.assert_array_equal(got, want)
    # and not what a declared ridge policy would give (the test can tell them apart)
    ridge = bottomup.segment(photo, ContourSource(sobel, owt="ridge", ridge=Ridge(smooth=1.0))).to_ucm2()
    assert not np.array_equal(got, ridge)


def test_declared_policy_is_applied(photo):
    pb, ori = sobel(photo)
    cases = {
        ContourSource(sobel, owt="steepest"): ucm(pb, ori, descent_first=True),
        ContourSource(sobel, owt="ridge", ridge=Ridge(smooth=1.0, isotropic=True, power=2.0)):
            ucm(*ridge_owt_inputs(pb, ori, Ridge(smooth=1.0, isotropic=True, power=2.0)), descent_first=True),
        ContourSource(sobel, owt="ridge"): ucm(*ridge_owt_inputs(pb, ori), descent_first=True),
        ContourSource(sobel, normalize=True): ucm(pb, ori, normalize=True),
    }
    for source, want in cases.items():
        np.testing.assert_array_equal(bottomup.segment(photo, source).to_ucm2(), want.to_ucm2(),
                                      err_msg=repr(source))


def test_multiscale_policy_is_the_assembler_on_the_single_scale_source(photo):
    from bottomup.hierarchy.multiscale import multiscale_hierarchy

    ms = Multiscale((1.0, 0.5), (0.6, 0.4))
    source = ContourSource(sobel, multiscale=ms)
    want = multiscale_hierarchy(photo, lambda lv: bottomup.ucm(*sobel(lv)), ms.scales, weights=ms.weights,
                                sigmoid=None)
    np.testing.assert_array_equal(bottomup.segment(photo, source).to_ucm2(), want.to_ucm2())
    assert source.single_scale().multiscale is None and source.single_scale().fn is sobel


def test_gpb_policy():
    g = GPb()
    assert (g.preset, g.seed, g.owt, g.arcs, g.normalize, g.ranker) == ("quality", 0, "steepest", "mean",
                                                                       True, "gpb-steepest")
    assert g.multiscale == Multiscale() and GPb("fast").multiscale is None
    assert GPb("fast", multiscale=True).multiscale == Multiscale()
    assert GPb(owt="ridge").ridge == Ridge()
    assert GPb("quality").single_scale() == GPb("quality", multiscale=False)
    assert GPb("fast").configured(seed=3) == GPb("fast", seed=3)
    assert GPb("quality", multiscale=False).configured(seed=1).multiscale is None
    with pytest.raises(ValueError, match="`preset` must be one of"):
        GPb("best")
    with pytest.raises(ValueError, match="`seed`"):
        GPb(seed=-1)
    with pytest.raises(TypeError, match="GPb options"):
        GPb().configured(scales=(1.0,))
    with pytest.warns(DeprecationWarning, match="'medium'"):
        assert GPb("mcg").preset == "medium"


def test_gpb_source_equals_the_chain_by_hand(photo, monkeypatch):
    """segment(GPb) = the release's chain: steepest-flank OWT, mean arcs, the sigmoid."""
    from bottomup.contours import gpb

    c = gpb(photo, "fast")
    want = ucm(c.pb, c.oriented, normalize=True, descent_first=True).to_ucm2()
    np.testing.assert_array_equal(bottomup.segment(photo, GPb("fast")).to_ucm2(), want)


def test_get_source_resolves_names_objects_and_callables():
    assert get_source("gpb") == GPb() and get_source(None) == GPb()
    g = GPb("fast")
    assert get_source(g) is g
    s = get_source(sobel)
    assert isinstance(s, ContourSource) and s.fn is sobel and s.owt == "plain" and s.name == "sobel"
    with pytest.raises(ValueError, match="`contours` must be a ContourSource, a callable or one of"):
        get_source("hed")
    with pytest.raises(TypeError, match="`contours` must be"):
        get_source(3)
    with pytest.raises(TypeError, match="`fn` must be a callable"):
        ContourSource(None)
    with pytest.raises(ValueError, match="`owt` must be one of"):
        ContourSource(sobel, owt="ridges")
    with pytest.raises(ValueError, match="`arcs` must be one of"):
        ContourSource(sobel, arcs="best")


def test_registered_source_that_cannot_import_gives_the_install_hint(monkeypatch):
    import importlib.metadata as md

    import bottomup.contours.source as src

    ep = md.EntryPoint("broken", "no_such_module_xyz:Source", src.ENTRY_POINT_GROUP)
    monkeypatch.setattr(src, "_entry_points", lambda: {"broken": ep})
    with pytest.raises(ImportError, match="needs its package"):
        get_source("broken")
    assert "broken" in src.source_names()


def test_contour_source_output_is_checked(photo):
    with pytest.raises(ValueError, match="returned pb of shape"):
        bottomup.segment(photo, lambda img: (np.zeros((3, 3)), None))
    with pytest.raises(ValueError, match="oriented stack of shape"):
        bottomup.segment(photo, lambda img: (np.zeros(img.shape[:2]), np.zeros(img.shape[:2])))


def test_old_keywords_warn_and_give_the_same_hierarchy(photo):
    new = bottomup.segment(photo, GPb("fast", seed=2, owt="plain")).to_ucm2()
    with pytest.warns(DeprecationWarning, match="attributes of the contour source"):
        old = bottomup.segment(photo, "fast", seed=2, owt="plain").to_ucm2()
    np.testing.assert_array_equal(old, new)
    with pytest.warns(DeprecationWarning):
        old = bottomup.segment(photo, preset="fast", multiscale=True).to_ucm2()
    np.testing.assert_array_equal(old, bottomup.segment(photo, GPb("fast", multiscale=True)).to_ucm2())
    with pytest.warns(DeprecationWarning):  # owt on another source: its policy changed
        old = bottomup.segment(photo, contours=sobel, owt="steepest").to_ucm2()
    np.testing.assert_array_equal(old, ucm(*sobel(photo), descent_first=True).to_ucm2())
    with pytest.raises(TypeError, match="unexpected keyword"):
        bottomup.segment(photo, colour=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bottomup.segment(photo, GPb("fast"))  # the new spelling does not warn


def test_arcs_argument(photo):
    from bottomup.owt import ArcScorer

    with pytest.raises(ValueError, match="`arcs` must be"):
        bottomup.segment(photo, sobel, arcs="best")
    with pytest.raises(TypeError, match="`arcs` must be"):
        bottomup.segment(photo, sobel, arcs=1)
    calls = []

    class Spy(ArcScorer):
        def __call__(self, x):
            calls.append(x.shape)
            return super().__call__(x)

    from bottomup.owt import load_arc_scorer

    base = load_arc_scorer()
    spy = Spy(base.mean, base.scale, base.weights, base.biases, base.meta)
    got = bottomup.segment(photo, sobel, arcs=spy).to_ucm2()
    assert calls and calls[0][1] == base.mean.size
    assert not np.array_equal(got, bottomup.segment(photo, sobel).to_ucm2())  # the scores were used


def test_cli_old_preset_name_still_works(tmp_path, photo, capsys):
    import cv2

    from bottomup.cli import main

    cv2.imwrite(str(tmp_path / "a.png"), (photo[..., ::-1] * 255).round().astype(np.uint8))
    read = cv2.imread(str(tmp_path / "a.png"))[..., ::-1]
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--preset", "mcg",
                 "--format", "npz", "--quiet"]) == 0
    assert "--preset medium" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "a.npz")["ucm2"],
                                  bottomup.segment(read, GPb("medium")).to_ucm2())


def test_configured_keeps_or_rederives_multiscale():
    assert GPb().configured(preset="fast").multiscale is None  # fast's own default
    assert GPb("fast").configured(preset="quality").multiscale == Multiscale()
    assert GPb("fast").configured(preset="quality", multiscale=False).multiscale is None
    assert GPb(multiscale=False).configured(seed=2) == GPb(multiscale=False, seed=2)


@pytest.mark.parametrize("call", ["segment", "proposals"])
def test_the_image_is_validated_once(photo, call):
    """check_image runs at the public face only, not again in each stage or pyramid level."""
    import sys

    from bottomup.mcg import proposals
    from bottomup.validate import check_image

    calls = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code is check_image.__code__:
            calls.append(frame.f_back.f_code.co_name)

    sys.setprofile(profile)
    try:
        if call == "segment":
            bottomup.segment(photo, GPb("fast", multiscale=True))
        else:
            proposals(photo, n=5, method="mcg", contours=GPb("fast"))
    finally:
        sys.setprofile(None)
    assert calls == [call], calls


@pytest.mark.parametrize("source", [GPb(), GPb("fast"), GPb("fast", multiscale=True), GPb(multiscale=False),
                                    GPb("medium", owt="plain", seed=3),
                                    GPb(multiscale=Multiscale((1.0, 0.5, 0.25), (1.0, 1.0, 1.0)))])
def test_gpb_repr_is_the_constructor_call(source):
    assert eval(repr(source)) == source
    assert "fn=" not in repr(source)


def test_deprecation_messages_suggest_a_spelling_that_runs():
    import re

    img = np.zeros((24, 24, 3))
    img[:, 12:] = 1.0
    calls = ((lambda: bottomup.mcg.proposals(img, n=5, preset="scg"), GPb("medium", multiscale=False)),
             (lambda: bottomup.segment(img, preset="fast", seed=2), GPb("fast", seed=2)))
    for call, expected in calls:
        with pytest.warns(DeprecationWarning) as rec:
            call()
        spelling = re.search(r"contours=(GPb\(.*\))", str(rec[0].message)).group(1)
        assert eval(spelling) == expected, spelling
