"""Input conversion (image contract) and BSDS/ucm2 file I/O."""

import numpy as np
import pytest

from bottomup.io import read_image, read_ucm2, write_ucm2
from bottomup.validate import check_image, check_map, check_ucm2


@pytest.mark.parametrize(
    ("dtype", "scale"), [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0), (np.float64, 1.0)]
)
def test_check_image_dtypes(dtype, scale):
    rng = np.random.default_rng(0)
    ref = rng.random((4, 5, 3))
    img = (ref * scale).astype(dtype) if scale != 1.0 else ref.astype(dtype)
    out = check_image(img)
    assert out.shape == (4, 5, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out, img.astype(np.float64) / scale)


def test_check_image_gray_rgba_bool():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = check_image(gray)
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 3] = 255
    assert check_image(rgba).max() == 0.0
    assert check_image(np.ones((2, 2), bool)).min() == 1.0
    chw = np.zeros((3, 4, 5))
    assert check_image(chw, channel_axis=0).shape == (4, 5, 3)


def test_check_image_errors():
    with pytest.raises(ValueError, match="NaN"):
        check_image(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_image(np.full((3, 3), 2.0))
    with pytest.raises(ValueError, match="empty"):
        check_image(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="channels"):
        check_image(np.zeros((3, 3, 7)))
    with pytest.raises(ValueError, match="pass one image"):
        check_image(np.zeros((2, 3, 3, 3)))
    with pytest.raises(TypeError, match="numeric"):
        check_image(np.array([["a"]]))
    with pytest.raises(TypeError):
        check_image(None)


def test_check_map_and_ucm2():
    with pytest.raises(ValueError, match="2-D"):
        check_map(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        check_map(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="double-size"):
        check_ucm2(np.zeros((4, 5)))
    assert check_ucm2(np.zeros((5, 7))).shape == (5, 7)


@pytest.mark.parametrize("ext", [".mat", ".npz", ".png"])
def test_ucm2_roundtrip(tmp_path, ext):
    rng = np.random.default_rng(1)
    u = np.zeros((7, 9))
    u[::2, :] = np.round(rng.random((4, 9)) * 65535) / 65535
    path = tmp_path / f"u{ext}"
    write_ucm2(path, u)
    back = read_ucm2(path)
    assert back.shape == u.shape
    np.testing.assert_allclose(back, u, atol=0 if ext != ".png" else 1e-9)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_read_errors(tmp_path):
    bad = tmp_path / "x.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="x.mat"):
        read_ucm2(bad)
    with pytest.raises(FileNotFoundError):
        read_ucm2(tmp_path / "missing.mat")
    img = tmp_path / "x.png"
    img.write_bytes(b"junk")
    with pytest.raises(ValueError, match="x.png"):
        read_image(img)


def test_read_image_16bit_rgba(tmp_path):
    import cv2

    arr = np.zeros((3, 4, 4), np.uint16)
    arr[..., 2] = 65535  # red in OpenCV's BGRA order
    cv2.imwrite(str(tmp_path / "a.png"), arr)
    out = read_image(tmp_path / "a.png")
    assert out.shape == (3, 4, 3)
    np.testing.assert_allclose(out[..., 0], 1.0)
    np.testing.assert_allclose(out[..., 1:], 0.0)


def test_read_bsds_gt(bsds_root):
    from bottomup.io import read_bsds_gt

    gt = read_bsds_gt(bsds_root / "data/groundTruth/val/101085.mat")
    assert gt.n_annotators >= 4
    assert gt.shape in ((321, 481), (481, 321))
    for s in gt.segmentations:
        assert s.min() == 0 and s.dtype == np.int32


def test_written_files_get_normal_permissions(tmp_path):
    import os

    mask = os.umask(0)
    os.umask(mask)
    write_ucm2(tmp_path / "u.mat", np.zeros((5, 7)))
    assert (tmp_path / "u.mat").stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_read_msrc21_hand_made(tmp_path):
    import scipy.io as sio

    from bottomup.io import read_msrc21

    seg = np.array([[1, 1, 2], [3, 4, 4]], np.uint8)
    # segment classes: 1 building (-> 0), 5 horse (void), 23 boat (-> 20); segment 4 has no label
    sio.savemat(tmp_path / "x_GT.mat", {"newseg": seg, "newlabels": np.array([[1, 5, 23]])})
    np.testing.assert_array_equal(read_msrc21(tmp_path / "x_GT.mat"), [[0, 0, 255], [20, 255, 255]])
    sio.savemat(tmp_path / "bad_GT.mat", {"other": seg})
    with pytest.raises(ValueError, match="newseg"):
        read_msrc21(tmp_path / "bad_GT.mat")


def test_read_msrc21_matches_the_data(msrc_root):
    from bottomup.io import read_msrc21

    lab = read_msrc21(msrc_root / "groundTruth" / "1_14_s_GT.mat")
    assert lab.dtype == np.uint8 and lab.ndim == 2
    assert set(np.unique(lab)) <= set(range(21)) | {255}
