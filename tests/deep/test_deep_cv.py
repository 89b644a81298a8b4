"""Cross-validation machinery of the deep heads: folds, the fitted fusion layer, selection that
never reads the held-out fold (``deep.data.kfold_split``, ``deep.fusion.fit_fusion``,
``bench/msrc.py select_fusion / cv_fold``), on tiny synthetic data."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bottomup.mcg import Candidates
from deep.backbone import efficientnet_lite0
from deep.data import SegmentationDataset, kfold_split, score_results, write_categories, write_sample
from deep.fusion import DEFAULT_NMS, fit_fusion, fit_nms, median_fusion
from deep.segmenter import (
    DEFAULT_FUSION,
    DeepSegmenter,
    Instances,
    check_fusion,
    fuse_components,
    instance_evidence,
)
from deep.training import cache_taps, load_proposals, load_taps, save_proposals

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import msrc  # noqa: E402

# ---- folds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [5, 7, 24, 25])
@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("with_classes", [False, True])
def test_folds_partition_balanced_deterministic(n, k, with_classes):
    if k > n:
        pytest.skip("more folds than images")
    names = [f"im{i:02d}" for i in range(n)]
    rng = np.random.default_rng(n)
    classes = [set(rng.choice(6, size=rng.integers(1, 4), replace=False).tolist()) for _ in range(n)]
    kw = {"classes": classes} if with_classes else {}
    folds = kfold_split(names, k, rng=3, **kw)
    assert len(folds) == k
    flat = [x for f in folds for x in f]
    assert sorted(flat) == names and len(set(flat)) == n  # disjoint and covering
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for f in folds:  # each fold in pool order
        assert f == sorted(f, key=names.index)
    assert kfold_split(names, k, rng=3, **kw) == folds  # deterministic for a seed
    assert any(kfold_split(names, k, rng=s, **kw) != folds for s in range(4, 10))


def test_folds_spread_rare_classes():
    """A class present in exactly K images lands once in each fold; random dealing would often
    put two in one fold."""
    n, k = 30, 5
    names = [f"im{i}" for i in range(n)]
    classes = [{0} for _ in range(n)]
    rare = [2, 3, 5, 7, 11]  # class 9 in 5 images, class 8 in 10
    for i in rare:
        classes[i] = {0, 9}
    for i in range(12, 22):
        classes[i] = {0, 8}
    for seed in range(5):
        folds = kfold_split(names, k, classes=classes, rng=seed)
        assert sorted(sum(names[i] in f for i in rare) for f in folds) == [1] * k
        assert sorted(sum(names[i] in f for i in range(12, 22)) for f in folds) == [2] * k


def test_folds_errors():
    with pytest.raises(ValueError, match="`n_folds` must be an integer between 2 and len"):
        kfold_split(["a", "b"], 3)
    with pytest.raises(ValueError, match="`n_folds`"):
        kfold_split(["a", "b"], 1)
    with pytest.raises(ValueError, match="unique"):
        kfold_split(["a", "a", "b"], 2)
    with pytest.raises(ValueError, match="`classes` must give one set per name"):
        kfold_split(["a", "b", "c"], 2, classes=[{0}])


# ---- the fusion layer ----------------------------------------------------------------------------

S = 8


def _constructed():
    """One 8x8 image of 4 leaves (4x4 blocks), 2 classes, whose unique best setting over the grid
    below is ``region 4, iou_power 2, paste 0.5``:

    - the per-pixel term is right with margin log 9 except on a quarter of the pixels of blocks
      0-2, wrong there with margin log(7/3) = 0.85;
    - the votes of power 2 are right on blocks 0-2 with margin log 1.5 = 0.41 (weight 4 overrides
      the noisy pixels, weight 1 does not); powers 1 and 4 vote wrong with margin log 9;
    - block 3 is class 1 where every term says 0, except one instance (score 0.8) on it.
    """
    leaf = (np.arange(S)[:, None] // 4) * 2 + (np.arange(S)[None, :] // 4)
    target = np.where(leaf >= 2, 1, 0).astype(np.uint8)
    said = target.copy()
    said[leaf == 3] = 0  # every term is wrong on block 3
    noisy = (np.add.outer(np.arange(S), np.arange(S)) % 4 == 0) & (leaf < 3)
    p_right = np.where(noisy, 0.3, 0.9)
    p1 = np.where(said == 1, p_right, 1 - p_right)
    logp = torch.log(torch.tensor(np.stack([1 - p1, p1]), dtype=torch.float32))

    def votes(p_right_leaf):
        said_leaf = np.array([0, 0, 1, 0])
        p1 = np.where(said_leaf == 1, p_right_leaf, 1 - p_right_leaf)
        return torch.log(torch.tensor(np.stack([1 - p1, p1], 1), dtype=torch.float32))

    m = (leaf == 3)[None]
    comp = {"logp": logp, "flat": torch.as_tensor(leaf.reshape(-1), dtype=torch.int64),
            "leaf": torch.full((4, 2), float(np.log(0.5))),
            "votes": {1.0: votes(0.1), 2.0: votes(0.6), 4.0: votes(0.1)},
            "instances": Instances(m, np.array([1]), np.array([0.8])), "shape": (S, S)}
    return comp, target


GRID = {"region": (0.0, 1.0, 4.0), "iou_power": (1.0, 2.0, 4.0), "paste": (0.9, 0.5, 2.0)}
BEST = {"region": 4.0, "iou_power": 2.0, "paste": 0.5}


def test_fit_fusion_recovers_the_best_setting():
    comp, target = _constructed()
    base = {"leaf": 0.0, "instance": 0.0, "region": 1.0, "iou_power": 2.0, "paste": 2.0}
    full = fit_fusion([comp], [target], 2, grid=GRID, base=base, method="grid")
    assert full.fusion == BEST and len(full.tried) == 27
    assert full.figures["pixel_acc"] == 1.0 and full.figures["miou"] == 1.0
    # the best is unique: every other setting scores lower
    assert sum(t["pixel_acc"] == 1.0 for t in full.tried) == 1
    coord = fit_fusion([comp], [target], 2, grid=GRID, base=base)
    assert coord.fusion == BEST and len(coord.tried) < 27
    # the fitted weights reproduce the targets through the fusion layer itself
    labels, _ = fuse_components(comp, {**DEFAULT_FUSION, **base, **coord.fusion})
    np.testing.assert_array_equal(labels, target)
    # the instance evidence cached by fit_fusion gives the same fusion as computing it each time
    fz = {**DEFAULT_FUSION, "instance": 2.0, "paste": 2.0}
    cached = {**comp, "evidence": instance_evidence(comp["instances"], comp["logp"])}
    a, pa = fuse_components(comp, fz)
    b, pb = fuse_components(cached, fz)
    np.testing.assert_array_equal(a, b)
    torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_fit_fusion_errors():
    comp, target = _constructed()
    with pytest.raises(ValueError, match="`grid` has an unknown key 'regoin'.*did you mean 'region'"):
        fit_fusion([comp], [target], 2, grid={"regoin": [1.0]})
    with pytest.raises(ValueError, match="`grid` key 'nms' is not fitted on components"):
        fit_fusion([comp], [target], 2, grid={"nms": [0.5]})
    with pytest.raises(ValueError, match="no votes for iou_power \\[3.0\\]"):
        fit_fusion([comp], [target], 2, grid={"iou_power": [2.0, 3.0]})
    with pytest.raises(ValueError, match="`targets\\[0\\]` has shape"):
        fit_fusion([comp], [target[:4]], 2, grid=GRID)
    with pytest.raises(ValueError, match="non-empty"):
        fit_fusion([], [], 2, grid=GRID)
    with pytest.raises(ValueError, match="`base` has an unknown key 'flipp'"):
        fit_fusion([comp], [target], 2, grid=GRID, base={"flipp": True})


def _box(shape, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_fit_nms_trades_duplicates_against_overlapping_objects():
    """Hand-computed: image A has one object and a near duplicate of its detection (IoU 0.6);
    image B has two objects of one class overlapping at IoU 0.4, each detected exactly. At 0.3
    the second object of B is suppressed (recall 2/3), at 0.7 the duplicate in A stays (a false
    positive ranked second), at 0.5 both are right: AP^r 1."""
    shape = (10, 10)
    a_gt = _box(shape, 0, 10, 0, 6)                                # 60 px
    a_dup = _box(shape, 0, 10, 0, 6) | _box(shape, 0, 10, 6, 10)   # IoU 60 / 100 = 0.6
    b1, b2 = _box(shape, 0, 7, 0, 10), _box(shape, 3, 10, 0, 10)  # IoU 40 / 100 = 0.4
    inst = [Instances(np.stack([a_gt, a_dup]), np.array([1, 1]), np.array([.9, .8])),
            Instances(np.stack([b1, b2]), np.array([1, 1]), np.array([.7, .6]))]
    void = np.zeros(shape, bool)
    truths = [(a_gt[None], np.array([1]), void), (np.stack([b1, b2]), np.array([1, 1]), void)]
    fit = fit_nms(inst, truths, [1], 2, thresholds=(0.3, 0.5, 0.7))
    assert fit.nms == 0.5 and fit.apr50 == pytest.approx(1.0)
    by = {t["nms"]: t["apr50"] for t in fit.tried}
    # VOC-style AP (precision made monotone): 0.3 keeps a, b1 (recall 2/3 at precision 1);
    # 0.7 ranks a, dup, b1, b2 = TP FP TP TP: precision 1 to recall 1/3, then 3/4 to recall 1
    assert by[0.3] == pytest.approx(2 / 3) and by[0.7] == pytest.approx(1 / 3 + 2 / 3 * 3 / 4)
    # n_refine: the first n instances only (the n best candidates); ties keep the first listed
    by_n = fit_nms(inst, truths, [1], 2, thresholds=(0.5,), n_refine=(1, 2))
    assert [(t["n_refine"], round(t["apr50"], 6)) for t in by_n.tried] == [(1, round(2 / 3, 6)), (2, 1.0)]
    assert by_n.n_refine == 2 and fit.n_refine is None
    with pytest.raises(ValueError, match="`n_refine` must list counts >= 1"):
        fit_nms(inst, truths, [1], 2, n_refine=(0,))
    # suppression at t reproduces what the segmenter keeps at nms=t (order and all)
    kept = inst[1].suppress(0.3)
    assert len(kept) == 1 and kept.scores.tolist() == [.7]
    assert len(inst[0].suppress(0.5, max_keep=1)) == 1 and len(Instances(
        np.zeros((0, 2, 2), bool), np.zeros(0, np.int64), np.zeros(0)).suppress(0.5)) == 0
    with pytest.raises(ValueError, match="`thresholds` must list values in \\[0, 1\\]"):
        fit_nms(inst, truths, [1], 2, thresholds=(1.5,))
    with pytest.raises(ValueError, match="`instances` and `truths`"):
        fit_nms(inst, truths[:1], [1], 2)
    with pytest.raises(ValueError, match="no thing class has a ground-truth"):
        fit_nms(inst, [(np.zeros((0,) + shape, bool), np.zeros(0, np.int64), void)] * 2, [1], 2)


def _crf_case(n=3, seed=0):
    """Images of two colours, targets following the colours, noisy probabilities that the CRF's
    colour kernel can clean."""
    rng = np.random.default_rng(seed)
    probs, images, targets = [], [], []
    for _ in range(n):
        lab = np.zeros((24, 30), np.uint8)
        lab[:, 12 + rng.integers(0, 6):] = 1
        img = np.where(lab[..., None] == 1, [0.9, 0.2, 0.1], [0.1, 0.3, 0.8])
        img = img + rng.normal(0, .03, (24, 30, 3))
        p1 = np.clip(0.5 + 0.25 * (2 * lab - 1) + rng.normal(0, 0.35, lab.shape), 0.02, 0.98)
        probs.append(np.stack([1 - p1, p1]).astype(np.float32))
        images.append(np.clip(img, 0, 1))
        targets.append(lab)
    return probs, images, targets


def test_fit_crf_picks_the_best_setting_of_the_grid():
    """Naive reference: every setting of the grid run by hand through dense_crf and scored."""
    from bottomup.metrics.semantic import confusion_matrix, semantic_scores
    from deep.crf import dense_crf
    from deep.fusion import fit_crf

    probs, images, targets = _crf_case()
    grid = {"n_iter": [1, 5], "w_appearance": [0.5, 10.0], "theta_alpha": [5.0, 80.0]}
    fit = fit_crf(probs, images, targets, 2, grid=grid, method="grid")

    def objective(params=None):
        conf = np.zeros((2, 2), np.int64)
        for p, im, t in zip(probs, images, targets, strict=True):
            q = p if params is None else dense_crf(-np.log(p), im, **params)
            conf += confusion_matrix(t, q.argmax(0).astype(np.uint8), 2)
        sc = semantic_scores(conf)
        return float(sc.mean_iou + sc.pixel_accuracy + sc.mean_accuracy), float(sc.mean_iou)

    scores = {}
    for n_iter in grid["n_iter"]:
        for w in grid["w_appearance"]:
            for ta in grid["theta_alpha"]:
                scores[(n_iter, w, ta)] = objective({"n_iter": n_iter, "w_appearance": w, "theta_alpha": ta})
    best = max(scores, key=lambda k: scores[k][0])  # first of equal scores, as the fit
    assert (fit.crf["n_iter"], fit.crf["w_appearance"], fit.crf["theta_alpha"]) == best
    assert fit.score == pytest.approx(scores[best][0])
    assert fit.figures["miou"] == pytest.approx(scores[best][1])
    assert fit.before["miou"] == pytest.approx(objective()[1]) and fit.figures["miou"] > fit.before["miou"]
    assert len({round(v[0], 9) for v in scores.values()}) > 1, "every setting scores alike: proves nothing"
    assert isinstance(fit.crf["n_iter"], int) and len(fit.tried) == 8
    # coordinate ascent from dense_crf's defaults (n_iter 5 in the grid; w 4 and theta 121 not:
    # their first values) ends on a setting of the grid at least as good as that start
    co = fit_crf(probs, images, targets, 2, grid=grid)
    got = (co.crf["n_iter"], co.crf["w_appearance"], co.crf["theta_alpha"])
    assert co.score == pytest.approx(scores[got][0]) and co.score >= scores[(5, 0.5, 5.0)][0]
    with pytest.raises(ValueError, match="`grid` key 'theta' is not a dense_crf parameter"):
        fit_crf(probs, images, targets, 2, grid={"theta": [1.0]})
    with pytest.raises(ValueError, match=r"`grid\['n_iter'\]\['n_iter'\]` must be a whole number"):
        fit_crf(probs, images, targets, 2, grid={"n_iter": [2.5]})
    with pytest.raises(ValueError, match="must be a positive number, got -1"):
        fit_crf(probs, images, targets, 2, grid={"w_appearance": [-1]})
    with pytest.raises(ValueError, match="`probs`, `images` and `targets` must be non-empty and of one"):
        fit_crf(probs, images[:2], targets, 2)


def test_unknown_fusion_keys_raise_wherever_they_enter():
    from deep.refine import MaskRefiner
    from deep.scoring import PixelClassifier, RegionScorer

    heads = (PixelClassifier(8, 2), RegionScorer(8, 2), MaskRefiner([4, 4, 4, 4]))
    kw = {"backbone": torch.nn.Identity()}
    with pytest.raises(ValueError, match=r"`fusion` has an unknown key 'leafs' \(did you mean 'leaf'\?\); "
                                         r"the known fusion keys are \['classes_per_candidate'"):
        DeepSegmenter(*heads, ["a", "b"], [1], fusion={"leafs": 1.0}, **kw)
    with pytest.raises(TypeError, match="`fusion` must be a dict"):
        DeepSegmenter(*heads, ["a", "b"], [1], fusion=[("leaf", 1.0)], **kw)
    seg = DeepSegmenter(*heads, ["a", "b"], [1], fusion={"leaf": 0.5}, **kw)
    comp, _ = _constructed()
    with pytest.raises(ValueError, match="unknown key 'bogus'"):
        seg.fuse(comp, {"bogus": 1})
    with pytest.raises(ValueError, match="unknown key 'bogus'"):
        seg.predict(np.zeros((S, S, 3)), fusion={"bogus": 1})
    labels, _ = seg.fuse(comp, {"region": 4.0, "iou_power": 2.0, "paste": 0.5, "instance": 0.0, "leaf": 0.0})
    assert labels.shape == (S, S)
    seg.fusion["typo"] = 1.0  # a mutated attribute is caught too
    with pytest.raises(ValueError, match="`segmenter.fusion` has an unknown key 'typo'"):
        seg.fuse(comp)
    assert check_fusion(None) == {}


def test_bench_fusion_and_grid_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="`--fusion` has an unknown key 'bogus'"):
        msrc.main(["eval", "--work", str(tmp_path), "--root", str(tmp_path), "--fusion", '{"bogus": 1}'])
    with pytest.raises(ValueError, match="`--grid` has an unknown key 'regions'"):
        msrc.main(["cv", "--work", str(tmp_path), "--root", str(tmp_path), "--grid", '{"regions": [1]}'])
    cv = ["cv", "--work", str(tmp_path), "--root", str(tmp_path), "--grid"]
    with pytest.raises(ValueError, match="`--grid` key 'max_instances' is not a weight of the fusion"):
        msrc.main([*cv, '{"max_instances": [5]}'])
    with pytest.raises(ValueError, match=r"`--grid` 'nms' must list thresholds in \[0, 1\], got \[0.5, 2\]"):
        msrc.main([*cv, '{"nms": [0.5, 2]}'])
    with pytest.raises(SystemExit, match="cv.json not found and no fold finished"):
        msrc.main(["eval", "--work", str(tmp_path), "--cv", "3"])


def test_median_fusion_takes_a_fold_choice_per_weight():
    folds = [{"leaf": 0.0, "region": 0.5, "instance": 2.0}, {"leaf": 0.5, "region": 0.5, "instance": 4.0},
             {"leaf": 0.5, "region": 1.0, "instance": 4.0}, {"leaf": 0.25, "region": 0.5, "instance": 4.0}]
    # by hand: leaf 0, .25, .5, .5 -> .25; region .5, .5, .5, 1 -> .5; instance 2, 4, 4, 4 -> 4
    assert median_fusion(folds) == {"leaf": 0.25, "region": 0.5, "instance": 4.0}
    assert median_fusion(folds[:1]) == folds[0]
    with pytest.raises(ValueError, match="at least one fold"):
        median_fusion([])
    with pytest.raises(ValueError, match=r"`fusions\[1\]` names the keys \['leaf'\], expected"):
        median_fusion([{"leaf": 0.0, "region": 1.0}, {"leaf": 0.5}])
    with pytest.raises(ValueError, match=r"`fusions\[0\]` has an unknown key 'leafs'"):
        median_fusion([{"leafs": 0.0}])
    # a switch: the majority, a tie to False
    assert median_fusion([{"flip": True}, {"flip": False}]) == {"flip": False}
    assert median_fusion([{"flip": True}, {"flip": False}, {"flip": True}]) == {"flip": True}


def test_train_takes_the_fusion_a_finished_cv_chose(tmp_path):
    epochs = {"pixel_epochs": 12, "scorer_epochs": 30, "refiner_epochs": 8}
    settings = {"epochs": epochs, "preset": "scg", "proposals": 1000, "owt": "plain"}
    folds = [{"fold": k, "fusion": {"leaf": v, "instance": 4.0 - k}} for k, v in enumerate((0.0, 0.5, 1.0))]
    path = tmp_path / "cv.json"
    path.write_text(json.dumps({"config": {**settings, "pool": "train+val"}, "folds": folds}))
    assert msrc.cv_fusion(path, settings) == ({"leaf": 0.5, "instance": 3.0}, None)
    crfs = [{"w_appearance": w, "n_iter": n} for w, n in ((6.0, 10), (4.0, 5), (6.0, 5))]
    path.write_text(json.dumps({"config": {**settings, "pool": "train+val"},
                                "folds": [{**f, "crf_params": c} for f, c in zip(folds, crfs, strict=True)]}))
    assert msrc.cv_fusion(path, settings)[1] == {"w_appearance": 6.0, "n_iter": 5}
    with pytest.raises(SystemExit, match=r"other settings than this training: epochs .*, proposals 1000 "
                                         r"there, 100 here"):
        msrc.cv_fusion(path, {**settings, "epochs": {**epochs, "scorer_epochs": 60}, "proposals": 100})
    path.write_text(json.dumps({"config": settings, "folds": folds[:2], "partial": True}))
    with pytest.raises(SystemExit, match="expected the summary of a finished cross-validation"):
        msrc.cv_fusion(path, settings)
    with pytest.raises(SystemExit, match="--fusion-from must name the cv.json.*does not exist"):
        msrc.main(["train", "--work", str(tmp_path), "--root", str(tmp_path),
                   "--fusion-from", str(tmp_path / "nope.json")])


# ---- selection inside the training folds ----------------------------------------------------------

H, W = 32, 40
N_IMAGES = 6


def _blocks(n=4):
    r = np.minimum(np.arange(H) * n // H, n - 1)
    c = np.minimum(np.arange(W) * n // W, n - 1)
    return (r[:, None] * n + c[None, :]).astype(np.int32)


def _candidates(rng, lab, obj_blocks, k=10):
    n = int(lab.max()) + 1
    sets = rng.random((k, n)) < 0.3
    sets[0] = False
    sets[0, obj_blocks] = True
    sets[~sets.any(1), 0] = True
    boxes = []
    for s in sets:
        r, c = np.nonzero(s[lab])
        boxes.append([r.min(), c.min(), r.max() + 1, c.max() + 1])
    return Candidates(lab, sets, np.array(boxes), np.linspace(1, 0, k))


def _pool(root: Path, work: Path):
    rng = np.random.default_rng(0)
    lab = _blocks()
    for i in range(N_IMAGES):
        obj_blocks = [[5, 6, 9, 10], [0, 1, 4, 5], [10, 11, 14, 15]][i % 3]
        obj = np.isin(lab, obj_blocks)
        img = rng.random((H, W, 3)) * 0.3
        img[obj] += 0.6
        labels = np.where(obj, 1, 0).astype(np.uint8)
        labels[:2] = 255
        write_sample(root, f"im{i}", img, labels, obj[None], [1])
    write_categories(root, ["ground", "thing"], things=[1])
    (root / "train.txt").write_text("\n".join(f"im{i}" for i in range(N_IMAGES)))
    ds = SegmentationDataset(root, "train")
    torch.manual_seed(0)
    backbone = efficientnet_lite0(pretrained=False).eval()
    cache_taps(ds, work, backbone=backbone, progress=None)
    for i, name in enumerate(ds.names):
        obj_blocks = [[5, 6, 9, 10], [0, 1, 4, 5], [10, 11, 14, 15]][i % 3]
        save_proposals(work / "props" / f"{name}.npz", _candidates(rng, lab, obj_blocks))
    return ds, backbone


SETTINGS = {"epochs": {"pixel_epochs": 1, "scorer_epochs": 1, "refiner_epochs": 1}, "preset": "scg",
            "proposals": 10, "owt": "plain", "method": "grid", "seed": 0, "switches": {"flip": [False]},
            "nms": [0.5], "n_refine": [100], "crf_grid": {"n_iter": [1, 3], "w_appearance": [4.0]},
            "grid": {"leaf": [0.0, 1.0], "region": [0.0, 2.0], "iou_power": [1.0, 4.0], "instance": [0.0],
                     "paste": [0.5, 2.0]}}


class PoisonedDataset(SegmentationDataset):
    """Raises on any read of a poisoned image (its sample or its files)."""

    poisoned: frozenset = frozenset()

    def __getitem__(self, i):
        if self.names[i] in self.poisoned:
            raise AssertionError(f"the held-out image {self.names[i]} was read")
        return super().__getitem__(i)

    def image_path(self, name):
        if name in self.poisoned:
            raise AssertionError(f"the held-out image {name} was read")
        return super().image_path(name)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    work = tmp_path_factory.mktemp("poolwork")
    ds, backbone = _pool(root, work)
    folds = kfold_split(ds.names, 3, classes=ds.present_classes(), rng=0)
    return ds, work, backbone, folds


def test_selection_never_reads_the_held_out_fold(pool, tmp_path):
    ds, work, backbone, folds = pool
    test, sel = folds[0], folds[1]
    fit = folds[2]
    clean = msrc.select_fusion(ds, work, fit, sel, tmp_path / "clean", SETTINGS, backbone=backbone,
                               progress=None)
    assert clean["sel_names"] == sel and clean["fit_names"] == fit
    inner = DeepSegmenter.load(tmp_path / "clean" / "inner_heads.pt", backbone=backbone)
    assert sorted(inner.trained_on) == sorted(fit) and inner.seen(sel + test) == []
    assert set(clean["fusion"]) == set(SETTINGS["grid"]) | {"flip", "nms", "n_refine"}
    assert clean["fusion"]["flip"] is False and clean["fusion"]["nms"] == 0.5
    weights = {k: clean["fusion"][k] for k in SETTINGS["grid"]}

    # the poison would change the choice if it were read: held-out labels that agree with another
    # setting win the fit once those images join the selection images
    seg = DeepSegmenter.load(tmp_path / "clean" / "inner_heads.pt", backbone=backbone)
    powers = {"iou_power": SETTINGS["grid"]["iou_power"]}

    def comps(names):
        sub = ds.subset(names)
        return [seg.components(sub[i].image, candidates=load_proposals(work, nm), taps=load_taps(work, nm),
                               fusion=powers) for i, nm in enumerate(sub.names)]

    sel_c, test_c = comps(sel), comps(test)
    sel_t = [s.labels for s in ds.subset(sel)]
    chosen = {**seg.fusion, **clean["fusion"]}
    other, poison = None, None
    for t in clean["tried"]:
        fz = {**seg.fusion, **{k: t[k] for k in SETTINGS["grid"]}}
        labs = [fuse_components(c, fz)[0] for c in test_c]
        if any((a != fuse_components(c, chosen)[0]).any() for a, c in zip(labs, test_c, strict=True)):
            other, poison = fz, labs
            break
    assert other is not None, "every setting gives the same labels: the test would prove nothing"
    refit = fit_fusion(sel_c + test_c, sel_t + poison, 2, grid=SETTINGS["grid"], base=seg.fusion,
                       method="grid")
    assert refit.fusion != weights, "the poisoned labels would not change the choice"

    # poison the held-out fold: adversarial label files, its image, taps and proposals removed,
    # and any read of its samples raises
    for name, lab in zip(test, poison, strict=True):
        import cv2

        cv2.imwrite(str(ds.root / "labels" / f"{name}.png"), lab)
    saved = {}
    for name in test:
        for p in (ds.image_path(name), work / "taps" / f"{name}.pt", work / "props" / f"{name}.npz"):
            saved[p] = p.read_bytes()
            p.unlink()
    try:
        pds = PoisonedDataset(ds.root, "train")
        pds.poisoned = frozenset(test)
        # same inner heads (trained again in a fresh folder from the same seed) and same choice
        again = msrc.select_fusion(pds, work, fit, sel, tmp_path / "poisoned", SETTINGS, backbone=backbone,
                                   progress=None)
    finally:
        for p, data in saved.items():
            p.write_bytes(data)
    assert again["fusion"] == clean["fusion"]
    assert again["figures"] == clean["figures"]
    assert again["sel_names"] == sel and not set(again["fit_names"]) & set(test)


def test_selection_tries_each_switch_and_keeps_the_best(pool, tmp_path):
    ds, work, backbone, folds = pool
    settings = {**SETTINGS, "switches": {"flip": [False, True]}, "nms": [1.0, 0.5, 0.0], "n_refine": [3, 10]}
    res = msrc.select_fusion(ds, work, folds[2], folds[1], tmp_path / "sw", settings, backbone=backbone,
                             progress=None)
    tried = res["switches_tried"]
    assert [t["flip"] for t in tried] == [False, True]
    scores = [t["objective"] for t in tried]
    want = tried[int(np.argmax(scores))]  # argmax keeps the first of equal scores, as the selection
    assert res["fusion"] == {**want["fusion"], "flip": want["flip"], "nms": res["fusion"]["nms"],
                             "n_refine": res["fusion"]["n_refine"]}
    # the NMS threshold is the best AP^r@0.5 of the selection fold, and each tried figure is the
    # AP^r of the segmenter run with that threshold from scratch (not suppressed afterwards)
    nms_tried = res["nms_tried"]
    want_order = [(n, t) for n in (3, 10) for t in (1.0, 0.5, 0.0)]
    assert [(t["n_refine"], t["nms"]) for t in nms_tried] == want_order
    best = nms_tried[int(np.argmax([t["apr50"] for t in nms_tried]))]
    assert res["fusion"]["nms"] == best["nms"] and res["figures"]["apr50"] == best["apr50"]
    assert res["fusion"]["n_refine"] == best["n_refine"]
    inner = DeepSegmenter.load(tmp_path / "sw" / "inner_heads.pt", backbone=backbone)
    sel = ds.subset(folds[1])
    for t in nms_tried:
        rows = []
        for i, nm in enumerate(sel.names):
            r = inner.predict(sel[i].image, candidates=load_proposals(work, nm), taps=load_taps(work, nm),
                              fusion={"nms": t["nms"], "n_refine": t["n_refine"]})
            rows.append((sel[i], r.labels, r.instances))
        assert score_results(sel, rows, 2)["apr50"] == pytest.approx(t["apr50"], abs=1e-12)
    # (on this toy every threshold scores alike; the choice itself is proven by
    # test_fit_nms_trades_duplicates_against_overlapping_objects)
    assert res["objective"] == max(scores)
    # the mirrored components differ from the plain ones: the switch is really tried
    seg = DeepSegmenter.load(tmp_path / "sw" / "inner_heads.pt", backbone=backbone)
    sub = ds.subset(folds[1])
    nm = sub.names[0]
    a, b = (seg.components(sub[0].image, candidates=load_proposals(work, nm), taps=load_taps(work, nm),
                           fusion={"flip": f})["logp"] for f in (False, True))
    assert not torch.equal(a, b)
    # --grid takes the switches beside the weights, and nothing else
    args = msrc.argparse.Namespace(grid='{"flip": [false], "leaf": [1.0]}', pixel_epochs=1, scorer_epochs=1,
                                   refiner_epochs=1, epochs_scale=1.0, preset="scg", proposals=10,
                                   owt="plain", method="grid", seed=0)
    got = msrc._settings(args)
    assert got["switches"] == {"flip": [False]} and got["grid"]["leaf"] == [1.0]
    assert got["nms"] == list(DEFAULT_NMS)
    args.grid = '{"nms": [0.3]}'
    assert msrc._settings(args)["nms"] == [0.3]
    args.grid = '{"n_refine": [50, 150]}'
    assert msrc._settings(args)["n_refine"] == [50, 150]
    with pytest.raises(ValueError, match=r"`--grid` key 'refine' is not a weight.*the switches \['flip'\]"):
        msrc.main(["cv", "--work", str(tmp_path), "--root", str(tmp_path), "--grid", '{"refine": [false]}'])
    with pytest.raises(ValueError, match=r"`--grid` 'n_refine' must list counts >= 1, got \[0\]"):
        msrc.main(["cv", "--work", str(tmp_path), "--root", str(tmp_path), "--grid", '{"n_refine": [0]}'])


def test_train_heads_from_reattaches_a_cv_selection_without_training(pool, tmp_path, monkeypatch):
    """``train --heads-from``: the heads byte for byte, the fusion and CRF of the cv.json, the
    rest of the file as ``train --fusion-from`` writes it; heads of another pool are refused."""
    from deep.refine import MaskRefiner
    from deep.scoring import PixelClassifier, RegionScorer

    ds, work0, backbone, _ = pool
    monkeypatch.setattr("deep.backbone.efficientnet.efficientnet_lite0", lambda **kw: backbone)
    torch.manual_seed(1)
    heads = (PixelClassifier(8, 2), RegionScorer(8, 2), MaskRefiner([4, 4, 4, 4]))
    src, out = tmp_path / "src.pt", tmp_path / "out.pt"
    DeepSegmenter(*heads, ds.classes, ds.things, fusion={"leaf": 1.0, "nms": 0.5}, backbone=backbone,
                  preset="scg", n_proposals=1000, owt="plain", trained_on=ds.names).save(src)
    epochs = {"pixel_epochs": 12, "scorer_epochs": 30, "refiner_epochs": 8}
    config = {"epochs": epochs, "preset": "scg", "proposals": 1000, "owt": "plain", "pool": "train"}
    fusions = [{"leaf": 0.0, "nms": 0.3, "n_refine": 200}, {"leaf": 0.5, "nms": 0.4, "n_refine": 200},
               {"leaf": 0.5, "nms": 0.3, "n_refine": 100}]
    crfs = [{"n_iter": 10, "w_appearance": w} for w in (6.0, 4.0, 3.0)]
    cv = tmp_path / "cv.json"
    cv.write_text(json.dumps({"config": config, "folds": [{"fusion": f, "crf_params": c}
                                                          for f, c in zip(fusions, crfs, strict=True)]}))
    argv = ["train", "--root", str(ds.root), "--work", str(work0), "--pool", "train",
            "--fusion-from", str(cv), "--heads-from", str(src), "--out", str(out)]
    assert msrc.main(argv) == 0
    got, before = torch.load(out, weights_only=False), torch.load(src, weights_only=False)
    for key in ("pixel", "scorer", "refiner"):
        assert before[key].keys() == got[key].keys()
        assert all(torch.equal(before[key][k], got[key][k]) for k in before[key])
    assert got["fusion"] == {**DEFAULT_FUSION, "leaf": 0.5, "nms": 0.3, "n_refine": 200}
    assert got["crf"] == {"n_iter": 10, "w_appearance": 4.0}
    assert got["trained_on"] == list(ds.names) and not (work0 / "train").exists()  # nothing trained
    with pytest.raises(SystemExit, match="give --fusion-from CV_JSON too"):
        msrc.main([a for a in argv if a not in ("--fusion-from", str(cv))])
    DeepSegmenter(*heads, ds.classes, ds.things, backbone=backbone, preset="scg", n_proposals=1000,
                  owt="plain", trained_on=ds.names[:-1]).save(src)
    with pytest.raises(SystemExit, match=rf"trained on the {N_IMAGES} images of --pool train in their "
                                         rf"order, got {N_IMAGES - 1} other images"):
        msrc.main(argv)
    DeepSegmenter(*heads, ds.classes, ds.things, backbone=backbone, preset="scg", n_proposals=100,
                  owt="plain", trained_on=ds.names).save(src)
    with pytest.raises(SystemExit, match="other proposals than this recipe: proposals 100 there, 1000 here"):
        msrc.main(argv)


def test_cv_fold_resumes_and_summarises(pool, tmp_path, capsys):
    ds, work0, backbone, folds = pool
    work = tmp_path / "w"
    shutil.copytree(work0 / "taps", work / "taps")
    shutil.copytree(work0 / "props", work / "props")
    msgs = []
    # fold 0 retrains on both training folds after the selection; folds 1, 2 keep the inner heads
    results = [msrc.cv_fold(ds, work, folds, k, SETTINGS, refit=k == 0, backbone=backbone,
                            progress=msgs.append) for k in range(3)]
    assert sum("epoch 1/1" in m for m in msgs) == 3 * (2 + 1 + 1)  # trainings x 3 heads
    for k, r in enumerate(results):
        fdir = work / "cv" / f"fold_{k}"
        for f in ("selection.json", "inner_heads.pt", "result.json", "inner/pixel.ckpt"):
            assert (fdir / f).is_file(), f
        assert (fdir / "heads.pt").is_file() == (k == 0) and r["refit"] == (k == 0)
        assert r["test_names"] == folds[k] and r["n_test"] == len(folds[k])
        n_sel = len(folds[(k + 1) % 3])
        assert r["n_train"] == N_IMAGES - len(folds[k]) - (n_sel if k else 0) and r["n_selection"] == n_sel
        sel = json.loads((fdir / "selection.json").read_text())
        assert not set(sel["sel_names"]) & set(folds[k]) and not set(sel["fit_names"]) & set(folds[k])
        for key in msrc.FIGURES:
            assert np.isfinite(r[key]) or key.startswith(("apr", "mask"))
        assert set(r["seconds_training"]) == {"pixel", "scorer", "refiner", "cpu_all_stages"}
        assert set(sel["crf"]) == set(SETTINGS["crf_grid"]) and sel["crf"]["n_iter"] in (1, 3)
        # the CRF is fitted on the very fusion the selection chose (its components reused)
        for key in ("pixel_acc", "mean_class_acc", "miou"):
            assert sel["crf_before"][key] == pytest.approx(sel["figures"][key], abs=1e-12), key
        assert "crf_params" not in r  # scored without --crf
    # a selection written before the CRF step gains it on resume, the rest unchanged
    fdir = work / "cv" / "fold_1"
    sel = json.loads((fdir / "selection.json").read_text())
    old = {k: v for k, v in sel.items() if not k.startswith(("crf", "seconds_crf"))}
    (fdir / "selection.json").write_text(json.dumps(old))
    again_sel = msrc.select_fusion(ds, work, sel["fit_names"], sel["sel_names"], fdir, SETTINGS,
                                   backbone=backbone, progress=None)
    assert again_sel["crf"] == sel["crf"] and again_sel["crf_figures"] == sel["crf_figures"]
    assert json.loads((fdir / "selection.json").read_text())["crf"] == sel["crf"]
    # --crf: the fold is scored again with the selected CRF parameters, which it records
    with_crf = msrc.cv_fold(ds, work, folds, 2, SETTINGS, refit=False, crf=True, backbone=backbone,
                            progress=None)
    chosen = json.loads((work / "cv" / "fold_2" / "selection.json").read_text())["crf"]
    assert with_crf["crf_params"] == chosen
    assert with_crf["miou"] == results[2]["miou"] and 0 <= with_crf["crf"]["miou"] <= 1
    results[2] = with_crf
    # resumed: nothing is trained again, the results are read back
    msgs.clear()
    again = msrc.cv_fold(ds, work, folds, 1, SETTINGS, backbone=backbone, progress=msgs.append)
    assert again == results[1] and not msgs
    summary = msrc.cv_summary(results, 2)
    assert summary["n_folds"] == 3 and len(summary["folds"]) == 3
    ms = summary["mean_std"]["miou"]
    vals = [r["miou"] for r in results]
    assert ms["mean"] == pytest.approx(np.mean(vals)) and ms["std"] == pytest.approx(np.std(vals, ddof=1))
    # the fusion the cross-validation chose: per weight, a value some fold chose, the lower median
    for key, v in summary["fusion"].items():
        chosen = sorted(r["fusion"][key] for r in results)
        assert v == chosen[1]
    conf = np.sum([r["confusion"] for r in results], 0)
    assert summary["pooled"]["pixel_acc"] == pytest.approx(np.trace(conf) / conf.sum())
    # folds finished, no summary yet: the partial figures of those folds, said to be partial
    config = {"pool": "train", "n_images": 6, "folds": 3}
    (work / "cv" / "config.json").write_text(json.dumps({"config": config, "folds": folds}))
    shutil.move(work / "cv" / "fold_2" / "result.json", tmp_path / "r2.json")
    assert msrc.main(["eval", "--work", str(work), "--cv", "3", "--json", str(tmp_path / "p.json")]) == 0
    assert "PARTIAL: folds [0, 1] of 3 finished" in capsys.readouterr().out
    partial = json.loads((tmp_path / "p.json").read_text())
    assert partial["partial"] and partial["mean_std"]["miou"]["mean"] == pytest.approx(np.mean(vals[:2]))
    with pytest.raises(SystemExit, match="holds a 3-fold cross-validation, not --cv 4"):
        msrc.main(["eval", "--work", str(work), "--cv", "4"])
    shutil.move(tmp_path / "r2.json", work / "cv" / "fold_2" / "result.json")
    (work / "cv" / "cv.json").write_text(json.dumps({"config": config, **summary}))
    assert msrc.main(["eval", "--work", str(work), "--cv", "3"]) == 0
    out = capsys.readouterr().out
    assert "3-fold cross-validation over train (6 images" in out and "mean+-std" in out
    with pytest.raises(SystemExit, match="holds a 3-fold cross-validation, not --cv 5"):
        msrc.main(["eval", "--work", str(work), "--cv", "5"])
    with pytest.raises(ValueError, match="at least 3 folds"):
        msrc.cv_fold(ds, work, folds[:2], 0, SETTINGS, backbone=backbone)
    # heads that saw a test image are refused: fold 0's inner heads (trained on folds[2]) left in
    # place for a fold list whose test fold is folds[2]
    swapped = [folds[2], folds[1], folds[0]]
    (work / "cv" / "fold_0" / "result.json").unlink()
    (work / "cv" / "fold_0" / "selection.json").unlink()
    with pytest.raises(RuntimeError, match="fold 0: the heads were trained on test images"):
        msrc.cv_fold(ds, work, swapped, 0, SETTINGS, refit=False, backbone=backbone, progress=None)
