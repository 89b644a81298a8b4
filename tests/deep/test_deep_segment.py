"""Training (with resume) and inference of the deep heads on tiny synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bottomup.mcg import Candidates
from deep.backbone import efficientnet_lite0
from deep.data import SegmentationDataset, write_categories, write_sample
from deep.segmenter import DeepSegmenter, Instances
from deep.training import cache_taps, load_proposals, save_proposals, train_heads

H, W = 40, 48


def _blocks(h=H, w=W, n=4):
    """Leaf partition: an n x n grid of blocks."""
    r = np.minimum(np.arange(h) * n // h, n - 1)
    c = np.minimum(np.arange(w) * n // w, n - 1)
    return (r[:, None] * n + c[None, :]).astype(np.int32)


def _candidates(rng, lab, k=12):
    n = int(lab.max()) + 1
    sets = rng.random((k, n)) < 0.3
    sets[0] = False
    sets[0, [5, 6, 9, 10]] = True  # the object (centre blocks)
    sets[~sets.any(1), 0] = True
    boxes = []
    for s in sets:
        r, c = np.nonzero(s[lab])
        boxes.append([r.min(), c.min(), r.max() + 1, c.max() + 1])
    return Candidates(lab, sets, np.array(boxes), np.linspace(1, 0, k))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    work = tmp_path_factory.mktemp("work")
    rng = np.random.default_rng(0)
    lab = _blocks()
    names = []
    for i in range(2):
        img = rng.random((H, W, 3)) * 0.2
        obj = np.isin(lab, [5, 6, 9, 10])
        img[obj] += 0.7
        labels = np.where(obj, 1, 0).astype(np.uint8)
        labels[:2] = 255
        write_sample(root, f"im{i}", img, labels, obj[None], [1])
        names.append(f"im{i}")
    write_categories(root, ["ground", "thing"], things=[1])
    (root / "train.txt").write_text("\n".join(names))
    ds = SegmentationDataset(root, "train")
    torch.manual_seed(0)
    backbone = efficientnet_lite0(pretrained=False).eval()
    cache_taps(ds, work, backbone=backbone, progress=None)
    for name in ds.names:
        save_proposals(work / "props" / f"{name}.npz", _candidates(rng, lab))
    return ds, work, backbone


def test_proposals_cache_round_trip(tiny):
    ds, work, _ = tiny
    c = load_proposals(work, ds.names[0])
    assert len(c) == 12 and c.shape == (H, W)
    assert c.masks(0).sum() == 4 * (H // 4) * (W // 4)


def test_train_heads_checkpoints_and_resumes(tiny):
    ds, work, _ = tiny
    msgs = []
    train_heads(ds, work, pixel_epochs=1, scorer_epochs=1, refiner_epochs=1, pixels_per_image=100,
                progress=msgs.append)
    for stage in ("pixel", "scorer", "refiner"):
        assert torch.load(work / f"{stage}.ckpt", weights_only=False)["epoch"] == 1
    msgs.clear()
    heads = train_heads(ds, work, pixel_epochs=2, scorer_epochs=2, refiner_epochs=2,
                        pixels_per_image=100, progress=msgs.append)
    assert any("pixel: resuming after epoch 1" in m for m in msgs)
    assert sum("epoch 2/2" in m for m in msgs) == 3 and not any("epoch 1/2" in m for m in msgs)
    for stage in ("pixel", "scorer", "refiner"):
        assert torch.load(work / f"{stage}.ckpt", weights_only=False)["epoch"] == 2
    # a finished run is not retrained
    msgs.clear()
    train_heads(ds, work, pixel_epochs=2, scorer_epochs=2, refiner_epochs=2, pixels_per_image=100,
                progress=msgs.append)
    assert not any("epoch" in m for m in msgs)
    tiny_heads.update(heads)


tiny_heads: dict = {}


@pytest.fixture
def segmenter(tiny):
    ds, work, backbone = tiny
    if not tiny_heads:
        tiny_heads.update(train_heads(ds, work, pixel_epochs=2, scorer_epochs=2, refiner_epochs=2,
                                      pixels_per_image=100, progress=None))
    return DeepSegmenter(tiny_heads["pixel"], tiny_heads["scorer"], tiny_heads["refiner"], ds.classes,
                         ds.things, backbone=backbone)


def test_predict_outputs(tiny, segmenter):
    ds, work, _ = tiny
    s = ds[0]
    res = segmenter.predict(s.image, candidates=load_proposals(work, s.name))
    assert res.labels.shape == (H, W) and res.labels.dtype == np.uint8
    assert set(np.unique(res.labels)) <= {0, 1}
    assert res.probs.shape == (2, H, W)
    np.testing.assert_allclose(res.probs.sum(0), 1.0, atol=1e-5)
    inst = res.instances
    assert isinstance(inst, Instances) and inst.masks.shape[1:] == (H, W)
    assert np.all(np.diff(inst.scores) <= 0) and set(inst.classes.tolist()) <= {1}
    recs = inst.to_coco(image_id="a", class_names=ds.classes)
    assert len(recs) == len(inst) and all(r["category_name"] == "thing" for r in recs)
    labels, inst2 = segmenter(s.image, load_proposals(work, s.name))
    np.testing.assert_array_equal(labels, res.labels)


def test_flip_averages_the_pixel_probabilities_of_the_image_and_its_mirror(tiny, segmenter):
    """Naive reference: the two passes by hand, probabilities averaged, then upsampled."""
    import torch.nn.functional as F

    from deep.scoring import dense_hypercolumns

    ds, work, _ = tiny
    s = ds[0]
    img = s.image
    h, w = img.shape[:2]
    cands = load_proposals(work, s.name)

    def probs(image):
        with torch.inference_mode():
            return F.softmax(segmenter.pixel(dense_hypercolumns(segmenter.taps(image), (h, w))), 1)

    plain, mirror = probs(img), probs(np.ascontiguousarray(img[:, ::-1])).flip(-1)
    assert not torch.allclose(plain, mirror, atol=1e-4), "the mirror pass changes nothing: proves nothing"
    for fz, parts in (({"flip": False}, [plain]), ({"flip": True}, [plain, mirror])):
        want = F.interpolate(torch.stack(parts).mean(0).log(), size=(h, w), mode="bilinear",
                             align_corners=False).log_softmax(1)[0]
        got = segmenter.components(img, candidates=cands, fusion=fz)["logp"]
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_crf_labels_use_the_carried_parameters_and_paste_the_instances(tiny, segmenter, tmp_path):
    from deep.crf import dense_crf
    from deep.segmenter import paste_instances

    ds, work, _ = tiny
    s = ds[0]
    segmenter.crf = {"n_iter": 3, "w_appearance": 6.0}
    segmenter.fusion["paste"] = 0.0  # every instance pasted: the paste step shows
    res = segmenter.predict(s.image, candidates=load_proposals(work, s.name))
    want = dense_crf(-np.log(np.clip(res.probs, 1e-8, 1.0)), s.image, n_iter=3, w_appearance=6.0)
    want = want.argmax(0).astype(np.uint8)
    raw = want.copy()
    paste_instances(res.instances, want, 0.0)
    assert len(res.instances) and (raw != want).any(), "no instance changes a pixel: proves nothing"
    np.testing.assert_array_equal(segmenter.crf_labels(res, s.image), want)
    other = dense_crf(-np.log(np.clip(res.probs, 1e-8, 1.0)), s.image, n_iter=1).argmax(0).astype(np.uint8)
    paste_instances(res.instances, other, 0.0)
    np.testing.assert_array_equal(segmenter.crf_labels(res, s.image, crf={"n_iter": 1}), other)
    segmenter.save(tmp_path / "h.pt")
    assert DeepSegmenter.load(tmp_path / "h.pt").crf == {"n_iter": 3, "w_appearance": 6.0}
    with pytest.raises(ValueError, match="`crf` has an unknown key 'theta'"):
        segmenter.crf_labels(res, s.image, crf={"theta": 1.0})
    with pytest.raises(ValueError, match=r"`image` is \(10, 10\), but `result` is for"):
        segmenter.crf_labels(res, np.zeros((10, 10, 3)))
    with pytest.raises(ValueError, match=r"`crf\['n_iter'\]` must be a positive number, got 0"):
        DeepSegmenter.load(tmp_path / "h.pt", crf={"n_iter": 0})


def test_save_load_round_trip(tiny, segmenter, tmp_path):
    ds, work, backbone = tiny
    s = ds[1]
    cands = load_proposals(work, s.name)
    segmenter.fusion["leaf"] = 0.25
    segmenter.save(tmp_path / "heads.pt")
    other = DeepSegmenter.load(tmp_path / "heads.pt", backbone=backbone)
    assert other.fusion["leaf"] == 0.25 and other.classes == ds.classes
    assert segmenter.trained_on is None and other.trained_on is None and other.seen(ds.names) == []
    segmenter.trained_on = ("b", "a")  # the training images travel with the weights
    segmenter.save(tmp_path / "named.pt")
    named = DeepSegmenter.load(tmp_path / "named.pt", backbone=backbone)
    assert named.trained_on == ("b", "a") and named.seen(["c", "a", "b"]) == ["a", "b"]
    # weights are stored as float16: predictions agree up to that rounding
    a = segmenter.predict(s.image, candidates=cands).probs
    b = other.predict(s.image, candidates=cands).probs
    np.testing.assert_allclose(a, b, atol=2e-2)
    with pytest.raises(FileNotFoundError, match="bench/msrc.py train"):
        DeepSegmenter.load(tmp_path / "missing.pt")


def test_no_candidates_and_wrong_shape(tiny, segmenter):
    ds, _, _ = tiny
    s = ds[0]
    lab = np.zeros((H, W), np.int32)
    none = Candidates(lab, np.zeros((0, 1), bool), np.zeros((0, 4)), np.zeros(0))
    res = segmenter.predict(s.image, candidates=none)
    assert len(res.instances) == 0 and res.labels.shape == (H, W)
    # one leaf, no votes: log P plus (leaf + region weights) x log of the image-wide mean of P
    p = res.pixel_probs.astype(np.float64)
    wt = segmenter.fusion["leaf"] + segmenter.fusion["region"]
    expect = (np.log(p) + wt * np.log(p.mean(axis=(1, 2)))[:, None, None]).argmax(0)
    assert (res.labels == expect).mean() > 0.999
    wrong = Candidates(np.zeros((H, W + 1), np.int32), np.ones((1, 1), bool), [[0, 0, H, W + 1]], [1.0])
    with pytest.raises(ValueError, match="candidates"):
        segmenter.predict(s.image, candidates=wrong)


def test_segment_file_writes_all_outputs(tiny, segmenter, tmp_path, monkeypatch):
    import cv2

    from deep import segmenter as segmod

    ds, work, _ = tiny
    monkeypatch.setattr(segmod, "_default", lambda device: segmenter)
    monkeypatch.setattr(segmenter, "n_proposals", 20)
    out = tmp_path / "im0.json"
    info = segmod.segment_file(ds.image_path("im0"), out)
    recs = json.loads(out.read_text())  # a COCO results list; the metadata is in the task's info
    assert info["height"] == H and info["width"] == W and info["classes"] == list(ds.classes)
    assert isinstance(recs, list) and len(recs) == info["n_instances"]
    assert info["image_id"] == "im0" and all(r["image_id"] == "im0" for r in recs)
    assert all(0 <= r["score"] <= 1 for r in recs)
    assert recs, "the tiny heads find no instance: this test would not load anything"
    if recs:  # pycocotools' own loader takes the file as it is (it refuses an empty list)
        from pycocotools.coco import COCO

        gt = COCO()
        gt.dataset = {"images": [{"id": "im0", "height": H, "width": W}], "annotations": [],
                      "categories": [{"id": i, "name": n} for i, n in enumerate(info["classes"])]}
        gt.createIndex()
        res = gt.loadRes(str(out))
        assert len(res.getAnnIds()) == len(recs)
    lab = cv2.imread(str(tmp_path / "im0_labels.png"), cv2.IMREAD_UNCHANGED)
    assert lab.shape == (H, W) and lab.max() <= 1
    assert cv2.imread(str(tmp_path / "im0_overlay.jpg")).shape == (H, W, 3)
    assert not list(tmp_path.glob(".*part*"))
