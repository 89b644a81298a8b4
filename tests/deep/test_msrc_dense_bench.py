"""bench/msrc_dense.py on a tiny synthetic MSRC folder: JSON keys, checkpoint resume, config check."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import msrc_dense  # noqa: E402

KEYS = (
    "pixel_acc",
    "mean_class_acc",
    "miou",
    "fw_iou",
    "seconds_train",
    "seconds_per_image",
    "epochs",
    "finetune",
    "n_params",
)


@pytest.fixture(scope="module")
def msrc_tiny(tmp_path_factory):
    """Two 40x56 images: left half class 1 (MSRC-v2 id 1), right half id 2, a void stripe (id 5)."""
    import scipy.io as sio
    from PIL import Image

    root = tmp_path_factory.mktemp("msrc")
    (root / "images").mkdir()
    (root / "groundTruth").mkdir()
    rng = np.random.default_rng(0)
    names = ["a_1_s", "b_2_s"]
    for k, name in enumerate(names):
        seg = np.ones((40, 56), np.int32)
        seg[:, 28 + 4 * k :] = 2
        seg[:3] = 3
        img = rng.integers(0, 60, (40, 56, 3)).astype(np.uint8)
        img[seg == 2, 2] += 180  # blue right part, so the classes are learnable
        Image.fromarray(img).save(root / "images" / f"{name}.png")
        sio.savemat(
            root / "groundTruth" / f"{name}_GT.mat",
            {"newseg": seg, "newlabels": np.array([[1], [2], [5]], np.uint8)},
        )
    (root / "train.txt").write_text("\n".join(names) + "\n")
    (root / "val.txt").write_text(names[0] + "\n")
    return root


def _main(root, out, head, epochs, *extra):
    argv = [
        "--root",
        str(root),
        "--head",
        head,
        "--json",
        str(out),
        "--epochs",
        str(epochs),
        "--threads",
        "1",
        "--random-init",
        *extra,
    ]
    assert msrc_dense.main(argv) == 0
    return json.loads(Path(out).read_text())


@pytest.mark.parametrize(("head", "finetune"), [("fcn8s", "none"), ("deeplabv3plus", "all")])
def test_json_keys_and_checkpoint(msrc_tiny, tmp_path, head, finetune):
    res = _main(msrc_tiny, tmp_path / "r.json", head, 1, "--finetune", finetune)
    for key in KEYS:
        assert key in res, key
    assert res["epochs"] == 1 and res["start_epoch"] == 0 and res["finetune"] == finetune
    assert 0 <= res["pixel_acc"] <= 1 and 0 <= res["miou"] <= 1
    assert res["n_params"] == res["n_params_head"] + res["n_params_backbone"]
    trained = res["n_params"] if finetune == "all" else res["n_params_head"]
    fixed = 21 * 16 * 16 if head == "fcn8s" else 0  # FCN's fixed bilinear upsampling by 8
    assert res["n_params_trained"] == trained - fixed
    assert res["n_val_images"] == 1 and res["n_train_images"] == 2
    ckpt = torch.load(tmp_path / "r.ckpt.pt", weights_only=False)  # default checkpoint path
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]  # no temp file left


def test_resume_continues_and_matches_an_uninterrupted_run(msrc_tiny, tmp_path):
    ck = tmp_path / "resumed.pt"
    # an interrupted run: 1 of 2 epochs done
    first = _main(msrc_tiny, tmp_path / "a.json", "fcn8s", 2, "--checkpoint", str(ck), "--stop-after", "1")
    assert first["epochs"] == 1 and first["epochs_planned"] == 2
    w1 = torch.load(ck, weights_only=False)["model"]
    second = _main(msrc_tiny, tmp_path / "b.json", "fcn8s", 2, "--checkpoint", str(ck))
    assert second["start_epoch"] == 1 and second["epochs"] == 2
    assert second["loss_history"][0] == first["loss_history"][0]
    assert len(second["loss_history"]) == 2
    assert second["seconds_train"] >= first["seconds_train"]
    w2 = torch.load(ck, weights_only=False)["model"]
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)  # the second epoch did train
    straight = _main(
        msrc_tiny, tmp_path / "c.json", "fcn8s", 2, "--checkpoint", str(tmp_path / "straight.pt")
    )
    ws = torch.load(tmp_path / "straight.pt", weights_only=False)["model"]
    for k in ws:
        torch.testing.assert_close(w2[k], ws[k], rtol=1e-5, atol=1e-6, msg=k)
    np.testing.assert_allclose(second["loss_history"], straight["loss_history"], rtol=1e-5)
    # a rerun of a finished run trains nothing and reports the same figures
    again = _main(msrc_tiny, tmp_path / "d.json", "fcn8s", 2, "--checkpoint", str(ck))
    assert again["start_epoch"] == 2 and again["loss_history"] == second["loss_history"]
    assert again["miou"] == second["miou"]
    # a larger --epochs extends a finished run
    more = _main(msrc_tiny, tmp_path / "e.json", "fcn8s", 3, "--checkpoint", str(ck))
    assert more["start_epoch"] == 2 and len(more["loss_history"]) == 3


def test_resume_refuses_another_configuration(msrc_tiny, tmp_path):
    ck = tmp_path / "c.pt"
    _main(msrc_tiny, tmp_path / "a.json", "fcn8s", 1, "--checkpoint", str(ck))
    with pytest.raises(ValueError, match="checkpoint"):
        _main(msrc_tiny, tmp_path / "b.json", "fcn8s", 2, "--checkpoint", str(ck), "--finetune", "all")


def test_frozen_backbone_is_not_trained(msrc_tiny, tmp_path):
    args = msrc_dense.parser().parse_args(
        ["--root", str(msrc_tiny), "--head", "deeplabv3plus", "--json", "x", "--epochs", "1"]
    )
    data = msrc_dense.load_split(msrc_tiny, "train")
    assert [lab.dtype for _, _, lab in data] == [np.uint8, np.uint8]
    assert set(np.unique(data[0][2])) == {0, 1, 255}
    torch.manual_seed(0)
    model = msrc_dense.build_model("deeplabv3plus", pretrained=False)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = model.classifier.weight.clone()
    info = msrc_dense.train(model, data, epochs=1, finetune="none", log=lambda m: None)
    assert info["epochs"] == 1 and info["seconds_cache"] > 0
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, before[k]), k  # weights and BatchNorm statistics untouched
    assert not torch.equal(model.classifier.weight, head_before)
    assert args.finetune == "none"


def test_bad_arguments(msrc_tiny):
    with pytest.raises(ValueError, match="head"):
        msrc_dense.build_model("unet", pretrained=False)
    model = msrc_dense.build_model("fcn8s", pretrained=False)
    data = msrc_dense.load_split(msrc_tiny, "val")
    with pytest.raises(ValueError, match="finetune"):
        msrc_dense.train(model, data, epochs=1, finetune="some")
    with pytest.raises(ValueError, match="epochs"):
        msrc_dense.train(model, data, epochs=-1)


def test_batches_cover_every_image_once_with_one_size_each():
    sizes = [(4, 6), (6, 4), (4, 6), (4, 6), (5, 5), (4, 6), (6, 4)]
    data = [(str(i), np.zeros((*s, 3), np.uint8), np.zeros(s, np.uint8)) for i, s in enumerate(sizes)]
    for epoch in range(3):
        steps = msrc_dense._batches(data, 3, torch.Generator().manual_seed(epoch))
        assert sorted(i for b in steps for i, _ in b) == list(range(len(data)))
        assert all(1 <= len(b) <= 3 and len({sizes[i] for i, _ in b}) == 1 for b in steps)
        assert len(steps) == msrc_dense._n_batches(data, 3) == 2 + 1 + 1  # (4,6): 4 -> 2 batches


@pytest.mark.parametrize("head_bn", ["train", "frozen"])
def test_batch_and_head_bn(msrc_tiny, head_bn):
    data = msrc_dense.load_split(msrc_tiny, "train")
    torch.manual_seed(0)
    model = msrc_dense.build_model("deeplabv3plus", pretrained=False)
    bn = model.aspp.project[1]
    mean0 = bn.running_mean.clone()
    info = msrc_dense.train(model, data, epochs=1, batch=2, head_bn=head_bn, log=lambda m: None)
    assert len(info["history"]) == 1 and np.isfinite(info["history"][0])
    assert torch.equal(bn.running_mean, mean0) == (head_bn == "frozen")
    with pytest.raises(ValueError, match="batch"):
        msrc_dense.train(model, data, epochs=1, batch=0)


def test_init_from_another_run(msrc_tiny, tmp_path):
    data = msrc_dense.load_split(msrc_tiny, "train")
    ck = tmp_path / "stage1.pt"
    torch.manual_seed(0)
    first = msrc_dense.build_model("fcn8s", pretrained=False)
    msrc_dense.train(first, data, epochs=1, checkpoint=ck, log=lambda m: None)
    torch.manual_seed(1)
    second = msrc_dense.build_model("fcn8s", pretrained=False)
    assert not torch.equal(second.score["32"].weight, first.score["32"].weight)
    msrc_dense.train(second, data, epochs=0, finetune="all", init=ck, log=lambda m: None)
    for (k, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_param_counts_leave_out_the_imagenet_classifier():
    model = msrc_dense.build_model("fcn8s", pretrained=False)
    c = msrc_dense.count_params(model, "none")
    # FCN-8s head: 1x1 scores from 320, 112 and 40 channels (+bias), two learned 4x4 up-convs
    # 21->21, and the fixed (untrained) per-class 16x16 bilinear upsampling by 8
    trained = 21 * (320 + 1) + 21 * (112 + 1) + 21 * (40 + 1) + 2 * 21 * 21 * 4 * 4
    assert c["n_params_trained"] == trained
    assert c["n_params_head"] == trained + 21 * 16 * 16
    # ImageNet classifier: 1x1 conv 320->1280, BatchNorm(1280), linear 1280->1000
    assert c["n_params_unused_classifier"] == 320 * 1280 + 2 * 1280 + 1280 * 1000 + 1000
    every = sum(p.numel() for p in model.parameters())
    assert c["n_params"] == every - c["n_params_unused_classifier"]
    assert msrc_dense.count_params(model, "all")["n_params_trained"] == c["n_params"] - 21 * 16 * 16
