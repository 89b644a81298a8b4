"""Instance AP: hand-computed AP^r cases, crowd/void handling, and pycocotools COCOeval."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from bottomup.masks import masks_to_rle
from bottomup.metrics.instance import InstanceAP, InstanceParams, mask_iou


def _box_mask(shape, r0, c0, r1, c1):
    m = np.zeros(shape, bool)
    m[r0:r1, c0:c1] = True
    return m


# ------------------------------------------------------------------ hand-computed


def test_ap_r_hand_computed_two_images():
    """Ranked: TP (img0), FP (img1), TP (img1), FP duplicate (img0); 3 positives.

    P/R points: (1, 1/3), (1/2, 1/3), (2/3, 2/3), (1/2, 2/3); envelope 1 up to 1/3, 2/3 up to
    2/3, then 0 up to 1: VOC AP = 1/3 * 1 + 1/3 * 2/3 = 5/9. COCO-101: recall points 0..0.33
    (34 points) at 1, 0.34..0.66 (33 points) at 2/3, the rest 0 -> (34 + 22) / 101.
    """
    shape = (6, 6)
    a, b, c = (
        _box_mask(shape, 0, 0, 2, 2),
        _box_mask(shape, 3, 3, 6, 6),
        _box_mask(shape, 0, 3, 2, 6),
    )
    params = InstanceParams.sds(iou_thresholds=[0.5])
    m = InstanceAP(1, params)
    # image 0: one object a; detections a (0.9, TP) and a duplicate of a (0.3, FP)
    m.update(np.stack([a, a]), [0, 0], [0.9, 0.3], a[None], [0])
    # image 1: objects b, c; detections: nothing useful (0.8), b (0.7)
    m.update(
        np.stack([_box_mask(shape, 5, 0, 6, 1), b]), [0, 0], [0.8, 0.7], np.stack([b, c]), [0, 0]
    )
    r = m.compute()
    assert r.ap[0, 0] == pytest.approx(5 / 9)
    assert r.recall[0, 0] == pytest.approx(2 / 3)
    assert r.n_positives.tolist() == [3]
    coco = InstanceAP(1, InstanceParams(iou_thresholds=[0.5], interpolation="coco101"))
    coco._records = m._records  # same match records, other integration
    assert coco.compute().ap[0, 0] == pytest.approx((34 + 22) / 101)


def test_threshold_and_greedy_matching():
    shape = (4, 10)
    gt = _box_mask(shape, 0, 0, 4, 4)  # 16 px
    d1 = _box_mask(shape, 0, 0, 4, 3)  # IoU 12/16 = 0.75
    d2 = _box_mask(shape, 0, 0, 4, 2)  # IoU 8/16 = 0.5
    m = InstanceAP(1, InstanceParams.sds(iou_thresholds=[0.5, 0.7, 0.8]))
    m.update(np.stack([d2, d1]), [0, 0], [0.9, 0.8], gt[None], [0])
    r = m.compute()
    # 0.5: d2 (first) matches (>=), d1 is a duplicate: P/R (1, 1), (1/2, 1): AP 1
    # 0.7: d2 misses, d1 matches: (0, 0), (1/2, 1): AP 1/2;  0.8: nothing: AP 0
    assert r.ap[:, 0].tolist() == [1.0, 0.5, 0.0]
    assert r.mean == pytest.approx(0.5)


def test_best_unmatched_gt_is_taken():
    """The second detection's best object is taken: it falls back to the next one (SDS greedy).

    The VOC detection rule (best object overall, FP if taken) would give AP 1/2 here.
    """
    shape = (4, 8)
    g1, g2 = _box_mask(shape, 0, 0, 4, 4), _box_mask(shape, 0, 4, 4, 8)  # 16 px each
    d1 = g1.copy()
    d2 = _box_mask(shape, 0, 0, 4, 7)  # 28 px: IoU g1 = 16/28, g2 = 12/32 = 0.375
    m = InstanceAP(1, InstanceParams.sds(iou_thresholds=[0.35]))
    m.update(np.stack([d1, d2]), [0, 0], [0.9, 0.8], np.stack([g1, g2]), [0, 0])
    assert m.compute().ap[0, 0] == pytest.approx(1.0)


def test_classes_are_separate_and_absent_class_is_nan():
    shape = (4, 4)
    a = _box_mask(shape, 0, 0, 2, 2)
    m = InstanceAP(3)
    # right mask, wrong class -> FP for class 1, missed object of class 0; class 2 never seen
    m.update(a[None], [1], [0.9], a[None], [0])
    r = m.compute()
    assert r.ap.shape == (2, 3)
    assert r.ap[:, 0].tolist() == [0.0, 0.0]
    assert np.isnan(r.ap[:, 1]).all() and np.isnan(r.ap[:, 2]).all()
    assert r.mean_ap.tolist() == [0.0, 0.0]


def test_crowd_is_ignored_and_absorbs_detections():
    shape = (6, 6)
    crowd = _box_mask(shape, 0, 0, 6, 3)
    obj = _box_mask(shape, 0, 3, 3, 6)
    dets = np.stack([_box_mask(shape, 0, 0, 2, 2), _box_mask(shape, 3, 0, 6, 2), obj])
    m = InstanceAP(1, InstanceParams.sds(iou_thresholds=[0.5]))
    m.update(dets, [0, 0, 0], [0.9, 0.8, 0.1], np.stack([crowd, obj]), [0, 0], gt_crowd=[1, 0])
    r = m.compute()
    # both crowd-covered detections are ignored (inter / area(det) = 1), not FPs
    assert r.n_positives.tolist() == [1]
    assert r.ap[0, 0] == 1.0
    # only crowd ground truth: class has no positives -> NaN
    m2 = InstanceAP(1)
    m2.update(dets, [0, 0, 0], [0.9, 0.8, 0.1], crowd[None], [0], gt_crowd=[True])
    assert np.isnan(m2.compute().ap).all() and np.isnan(m2.compute().mean)


def test_void_pixels_leave_the_iou():
    shape = (4, 4)
    gt = _box_mask(shape, 0, 0, 2, 2)
    det = _box_mask(shape, 0, 0, 2, 4)  # IoU 0.5; with the right half void, 1.0
    void = _box_mask(shape, 0, 2, 4, 4)
    assert mask_iou(det[None], gt[None]).tolist() == [[0.5]]
    assert mask_iou(det[None], gt[None], void=void).tolist() == [[1.0]]
    m = InstanceAP(1, InstanceParams.sds(iou_thresholds=[0.7]))
    m.update(det[None], [0], [1.0], gt[None], [0], void=void)
    assert m.compute().ap[0, 0] == 1.0


def test_max_dets_keeps_best_per_image_and_class():
    shape = (4, 4)
    gt = _box_mask(shape, 0, 0, 2, 2)
    junk = _box_mask(shape, 3, 3, 4, 4)
    m = InstanceAP(1, InstanceParams(iou_thresholds=[0.5], max_dets=1))
    m.update(np.stack([junk, gt]), [0, 0], [0.9, 0.5], gt[None], [0])
    assert m.compute().ap[0, 0] == 0.0  # the true positive was cut


def test_rle_inputs_equal_mask_inputs():
    rng = np.random.default_rng(11)
    images = _random_images(rng, 3, 2, (10, 12))
    a, b = InstanceAP(2, InstanceParams.coco()), InstanceAP(2, InstanceParams.coco())
    for pm, pl, ps, gm, gl, crowd in images:
        a.update(pm, pl, ps, gm, gl, gt_crowd=crowd)
        gt_in = masks_to_rle(gm) if len(gm) else gm
        b.update(masks_to_rle(pm), pl, ps, gt_in, gl, gt_crowd=crowd)
    np.testing.assert_array_equal(a.compute().ap, b.compute().ap)


def test_empty_inputs():
    shape = (3, 3)
    m = InstanceAP(2)
    assert np.isnan(m.compute().ap).all() and m.compute().ap.shape == (2, 2)
    none = np.zeros((0, *shape), bool)
    m.update(none, [], [], none, [])
    assert np.isnan(m.compute().mean)
    # objects but no detection: AP 0, recall 0
    m.update(none, np.zeros(0, int), np.zeros(0), np.ones((1, *shape), bool), [1])
    r = m.compute()
    assert r.ap[:, 1].tolist() == [0.0, 0.0] and r.recall[:, 1].tolist() == [0.0, 0.0]
    assert mask_iou(none, np.ones((2, *shape), bool)).shape == (0, 2)


def test_errors():
    m = InstanceAP(2)
    a = np.ones((1, 3, 3), bool)
    with pytest.raises(ValueError, match=r"`pred_masks` masks \(shape \(3, 4\)\)"):
        m.update(np.ones((1, 3, 4), bool), [0], [1.0], a, [0])
    with pytest.raises(ValueError, match=r"`pred_scores` must have shape \(1,\)"):
        m.update(a, [0], [1.0, 2.0], a, [0])
    with pytest.raises(ValueError, match="`gt_labels` must lie in 0..1"):
        m.update(a, [0], [1.0], a, [2])
    with pytest.raises(ValueError, match="NaN"):
        m.update(a, [0], [np.nan], a, [0])
    with pytest.raises(TypeError, match="integer class labels"):
        m.update(a, [0.5], [1.0], a, [0])
    with pytest.raises(ValueError, match="`void`"):
        m.update(a, [0], [1.0], a, [0], void=np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match=r"\(K, H, W\)"):
        m.update(a[0], [0], [1.0], a, [0])
    with pytest.raises(ValueError, match="interpolation"):
        InstanceParams(iou_thresholds=[0.5], interpolation="11point")
    with pytest.raises(ValueError, match="iou_thresholds"):
        InstanceParams(iou_thresholds=[1.5])
    with pytest.raises(ValueError, match="max_dets"):
        InstanceParams(iou_thresholds=[0.5], max_dets=0)
    with pytest.raises(ValueError, match="n_classes"):
        InstanceAP(0)


# ------------------------------------------------------------------ naive AP^r reference


def _naive_ap_r(images, thr, n_classes):
    """SDS-style loop: rank all detections of a class, greedy to the best unmatched object."""
    aps = []
    for c in range(n_classes):
        dets, n_pos = [], 0
        for i, (_pm, pl, ps, _gm, gl) in enumerate(images):
            n_pos += int(np.sum(np.asarray(gl) == c))
            dets += [(ps[k], i, k) for k in range(len(pl)) if pl[k] == c]
        if n_pos == 0:
            continue
        dets.sort(key=lambda x: -x[0])
        taken = {i: set() for i in range(len(images))}
        tp = []
        for _, i, k in dets:
            pm, _, _, gm, gl = images[i]
            best, best_g = -1.0, None
            for g in range(len(gl)):
                if gl[g] != c or g in taken[i]:
                    continue
                inter = np.sum(pm[k] & gm[g])
                union = np.sum(pm[k] | gm[g])
                iou = inter / union if union else 0.0
                if iou > best:
                    best, best_g = iou, g
            ok = best_g is not None and best >= thr
            if ok:
                taken[i].add(best_g)
            tp.append(ok)
        tp = np.array(tp, bool)
        ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
        rec = ctp / n_pos
        prec = ctp / np.maximum(ctp + cfp, 1)
        # VOC 2010+: area under the monotone envelope, step by step
        ap, prev_r = 0.0, 0.0
        for j in range(len(rec)):
            if rec[j] > prev_r:
                ap += (rec[j] - prev_r) * prec[j:].max()
                prev_r = rec[j]
        aps.append(ap)
    return float(np.mean(aps)) if aps else float("nan")


def _random_images(rng, n_images, n_classes, shape, max_objects=4, max_dets=7):
    images = []
    for _ in range(n_images):
        g = int(rng.integers(0, max_objects + 1))
        gm = np.zeros((g, *shape), bool)
        for j in range(g):
            r0, c0 = rng.integers(0, shape[0] - 2), rng.integers(0, shape[1] - 2)
            gm[j, r0 : r0 + rng.integers(2, 9), c0 : c0 + rng.integers(2, 9)] = True
        gl = rng.integers(0, n_classes, g)
        k = int(rng.integers(0, max_dets + 1))
        pm = np.zeros((k, *shape), bool)
        pl = rng.integers(0, n_classes, k)
        for j in range(k):
            if g and rng.random() < 0.7:  # a jittered copy of an object, mostly of its class
                o = rng.integers(0, g)
                src = gm[o]
                if rng.random() < 0.8:
                    pl[j] = gl[o]
                shift = (rng.integers(-1, 2), rng.integers(-1, 2)) if rng.random() < 0.6 else (0, 0)
                pm[j] = np.roll(src, shift, axis=(0, 1))
                pm[j] ^= (rng.random(shape) < 0.02) & np.roll(src, 1, axis=1)  # ragged edges
            else:
                r0, c0 = rng.integers(0, shape[0] - 2), rng.integers(0, shape[1] - 2)
                pm[j, r0 : r0 + rng.integers(2, 7), c0 : c0 + rng.integers(2, 7)] = True
        ps = rng.random(k)
        crowd = rng.random(g) < 0.15
        images.append((pm, pl, ps, gm, gl, crowd))
    return images


@pytest.mark.parametrize("seed", range(3))
def test_ap_r_matches_naive(seed):
    rng = np.random.default_rng(seed)
    images = [x[:5] for x in _random_images(rng, 6, 3, (14, 16))]
    for thr in (0.5, 0.7):
        m = InstanceAP(3, InstanceParams.sds(iou_thresholds=[thr]))
        for im in images:
            m.update(*im)
        assert m.compute().mean == pytest.approx(_naive_ap_r(images, thr, 3), abs=1e-12)


# ------------------------------------------------------------------ pycocotools oracle


def _coco_stats0(images, n_classes):
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval_mod = pytest.importorskip("pycocotools.cocoeval")
    h, w = images[0][0].shape[1:]
    gt_anns, dt_anns = [], []
    for i, (pm, pl, ps, gm, gl, crowd) in enumerate(images):
        for j in range(len(gl)):
            rle = masks_to_rle(gm[j])
            rle["counts"] = rle["counts"].decode()
            gt_anns.append(
                {
                    "id": len(gt_anns) + 1,
                    "image_id": i + 1,
                    "category_id": int(gl[j]) + 1,
                    "segmentation": rle,
                    "area": float(gm[j].sum()),
                    "bbox": [0, 0, 1, 1],
                    "iscrowd": int(crowd[j]),
                }
            )
        for j in range(len(pl)):
            rle = masks_to_rle(pm[j])
            rle["counts"] = rle["counts"].decode()
            dt_anns.append(
                {
                    "image_id": i + 1,
                    "category_id": int(pl[j]) + 1,
                    "segmentation": rle,
                    "score": float(ps[j]),
                }
            )
    gt = coco_mod.COCO()
    gt.dataset = {
        "images": [{"id": i + 1, "height": h, "width": w} for i in range(len(images))],
        "annotations": gt_anns,
        "categories": [{"id": c + 1, "name": str(c)} for c in range(n_classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(dt_anns) if dt_anns else None
        if dt is None:
            return None
        ev = cocoeval_mod.COCOeval(gt, dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0], ev.eval["precision"]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_coco_ap_matches_pycocotools(seed, ties):
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(100 + seed)
    n_classes = 3
    images = _random_images(rng, 8, n_classes, (16, 18), max_objects=5, max_dets=12)
    if ties:  # many equal scores: the order must follow COCO's stable sorts exactly
        images = [(pm, pl, np.round(ps, 1), gm, gl, c) for pm, pl, ps, gm, gl, c in images]
    if not any(len(im[1]) for im in images):
        pytest.skip("no detection drawn")
    ref = _coco_stats0(images, n_classes)
    m = InstanceAP(n_classes, InstanceParams.coco())
    for pm, pl, ps, gm, gl, crowd in images:
        m.update(pm, pl, ps, gm, gl, gt_crowd=crowd)
    got = m.compute()
    stats0, precision = ref
    if stats0 == -1:
        assert np.isnan(got.mean)
    else:
        assert got.mean == pytest.approx(stats0, abs=1e-6)
    # per threshold and class: COCO's precision table averaged over recall points, area "all",
    # maxDets 100
    coco_ap = precision[:, :, :, 0, 2]
    coco_ap = np.where((coco_ap > -1).all(axis=1), coco_ap.mean(axis=1), np.nan)
    np.testing.assert_allclose(got.ap, coco_ap, atol=1e-6, equal_nan=True)


def test_coco_max_dets_against_pycocotools():
    """More than 100 detections in an image: both keep the same 100."""
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(7)
    images = _random_images(rng, 2, 1, (12, 12), max_objects=4, max_dets=150)
    images = [(pm, pl, ps, gm, gl, np.zeros_like(c)) for pm, pl, ps, gm, gl, c in images]
    stats0, _ = _coco_stats0(images, 1)
    m = InstanceAP(1, InstanceParams.coco())
    for pm, pl, ps, gm, gl, crowd in images:
        m.update(pm, pl, ps, gm, gl, gt_crowd=crowd)
    got = m.compute().mean
    assert got == pytest.approx(stats0, abs=1e-6) or (stats0 == -1 and np.isnan(got))
