"""The numba stroke renderer: geometry, colours, encodings, augmentation, agreement with cv2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for benchmarks.reference

from benchmarks.reference import (  # noqa: E402
    LINE_WIDTH,
    reference_image,
    reference_strokes_image,
)
from doodle.data.shards import open_shard, write_shard  # noqa: E402
from doodle.data.strokes import pack  # noqa: E402
from doodle.rendering.raster import render, warmup  # noqa: E402


def render_strokes(strokes, img_size: int, encoding: str = "grey", times=None) -> np.ndarray:
    """One drawing given as ``[(xs, ys), ...]`` (``times``: its points' ms, flat) ->
    ``(H, W, C) uint8``."""
    d = pack([strokes])
    if times is not None:
        d.t = np.asarray(times, np.uint16)
    return render(d, None, img_size, encoding, LINE_WIDTH)[0]


def with_times(d, seed: int = 0):
    """``d`` with made-up increasing point times (pauses between strokes included)."""
    rng = np.random.default_rng(seed)
    d.t = np.cumsum(rng.integers(5, 400, len(d.xy))).astype(np.uint16)
    for i in range(len(d)):  # each drawing starts at 0
        a = d.stroke_offsets[d.drawing_offsets[i]]
        b = d.stroke_offsets[d.drawing_offsets[i + 1]]
        d.t[a:b] -= d.t[a]
    return d


# Mean absolute difference (0..255) allowed against the cv2 reference on random synthetic
# drawings; on the real sample the measured figure is ~1.1 at 64 and 128 px.
MAD_BOUND = 3.0
GREYS = [255 - min(t, 10) * 13 for t in range(12)]


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    warmup()


def _random_raw(rng: np.random.Generator, n: int) -> list:
    out = []
    for _ in range(n):
        strokes = []
        for _ in range(int(rng.integers(1, 6))):
            k = int(rng.integers(2, 12))
            # A random walk, like real pen strokes (long jumps would be unusual).
            xs = np.clip(rng.integers(20, 236) + np.cumsum(rng.integers(-40, 41, k)), 0, 255)
            ys = np.clip(rng.integers(20, 236) + np.cumsum(rng.integers(-40, 41, k)), 0, 255)
            strokes.append((xs.tolist(), ys.tolist()))
        out.append(strokes)
    return out


@pytest.fixture(scope="module")
def raw() -> list:
    return _random_raw(np.random.default_rng(0), 40)


@pytest.mark.parametrize("size", [32, 64, 100, 256])
@pytest.mark.parametrize("encoding", ["grey", "order3", "time3"])
def test_shape_and_dtype(raw, size, encoding):
    d = with_times(pack(raw))
    channels = 1 if encoding == "grey" else 3
    img = render(d, np.array([3, 1, 4]), size, encoding, LINE_WIDTH)
    assert img.shape == (3, size, size, channels) and img.dtype == np.uint8
    assert img.flags.c_contiguous
    assert (img.reshape(3, -1).max(axis=1) > 0).all()  # something is drawn
    assert render(d, None, size, encoding, LINE_WIDTH).shape == (len(raw), size, size, channels)


def test_empty_batch():
    assert render(pack([[([1], [2])]]), np.zeros(0, np.int64), 64, "grey", LINE_WIDTH).shape == (
        0,
        64,
        64,
        1,
    )


def test_horizontal_line_rows_columns_and_grey():
    img = render_strokes([([10, 200], [20, 20])], 64)[..., 0]
    # y = 20 at 256 scale is row (20 + 0.5) * 64 / 256 - 0.5 = 4.625: rows 4 and 5, fully.
    assert (img[4:6, 3:49] == 255).all()
    assert not img[:3].any() and not img[7:].any()
    # x from 10 to 200 is columns 2.1 .. 49.6; nothing beyond the round caps.
    assert not img[:, :1].any() and not img[:, 51:].any()
    assert img[4:6, 2].min() > 0 and img[4:6, 50].max() > 0


def test_line_width_scales_with_size():
    thick = [
        (render_strokes([([10, 200], [128, 128])], s)[..., 0] > 127).sum(axis=0).max()
        for s in (64, 128, 256)
    ]
    assert thick[0] < thick[1] < thick[2]  # 6 px at 256 -> ~2 at 64
    assert thick[2] == 7  # like cv2.line(thickness=6): 7 source pixels


def test_stroke_colours_by_order():
    strokes = [([20, 230], [10 + 20 * t, 10 + 20 * t]) for t in range(12)]
    img = render_strokes(strokes, 256)[..., 0]
    for t, grey in enumerate(GREYS):
        y = 10 + 20 * t
        assert img[y, 100] == grey, t
    assert GREYS[0] == 255 and GREYS[3] == 216 and GREYS[10] == GREYS[11] == 125


def test_later_stroke_overwrites_earlier_at_crossing():
    img = render_strokes([([20, 230], [128, 128]), ([128, 128], [20, 230])], 64)[..., 0]
    c = (128 + 0.5) * 64 / 256 - 0.5
    centre = img[int(c), int(c)]
    assert centre == GREYS[1]  # stroke 1 on top
    assert img[int(c), 10] == GREYS[0]  # stroke 0 elsewhere
    swapped = render_strokes([([128, 128], [20, 230]), ([20, 230], [128, 128])], 64)[..., 0]
    assert swapped[int(c), int(c)] == GREYS[1]
    assert swapped[10, int(c)] == GREYS[0]


def test_single_point_stroke_is_a_dot():
    img = render_strokes([([100], [60])], 64)[..., 0]
    ys, xs = np.nonzero(img)
    assert len(ys) > 0 and img.max() == 255
    cx, cy = (100 + 0.5) / 4 - 0.5, (60 + 0.5) / 4 - 0.5
    assert np.abs(xs - cx).max() < 1.5 and np.abs(ys - cy).max() < 1.5
    assert len(ys) <= 9


def test_memmap_shard_equals_in_memory(raw, tmp_path):
    d = with_times(pack(raw))
    n = len(raw)
    path = tmp_path / "train-000.qds"
    write_shard(path, d, np.arange(n) % 3, np.arange(n) + 10**15, np.array([b"US"] * n))
    shard = open_shard(path)
    assert isinstance(shard.drawings.xy, np.memmap)
    idx = np.array([7, 0, 39, 7, 12])
    for encoding in ("grey", "order3", "time3"):
        np.testing.assert_array_equal(
            render(shard.drawings, idx, 64, encoding, LINE_WIDTH),
            render(d, idx, 64, encoding, LINE_WIDTH),
        )


def test_idx_order_and_out_buffer(raw):
    d = pack(raw)
    full = render(d, None, 48, "grey", LINE_WIDTH)
    idx = np.array([5, 2, 2, 30])
    np.testing.assert_array_equal(render(d, idx, 48, "grey", LINE_WIDTH), full[idx])
    out = np.full((4, 48, 48, 1), 7, np.uint8)  # stale contents must be cleared
    assert render(d, idx, 48, "grey", LINE_WIDTH, out=out) is out
    np.testing.assert_array_equal(out, full[idx])
    with pytest.raises(ValueError):
        render(d, idx, 48, "grey", LINE_WIDTH, out=np.empty((4, 48, 48, 3), np.uint8))


def test_order3_channels():
    strokes = [([20, 230], [60, 60]), ([20, 230], [180, 180])]
    img = render_strokes(strokes, 256, "order3").astype(int)
    grey = render_strokes(strokes, 256, "grey")[..., 0]
    np.testing.assert_array_equal(img[..., 0], grey)  # ch0 is the grey encoding
    # ch2: progress within each stroke, 255 at its start -> 55 at its end (direction).
    for y in (60, 180):
        assert abs(img[y, 20, 2] - 255) <= 2 and abs(img[y, 230, 2] - 55) <= 2
        assert abs(img[y, 125, 2] - 155) <= 2
    # ch1: progress through the drawing's 4 points: 255, 188, 122, 55.
    assert abs(img[60, 20, 1] - 255) <= 2 and abs(img[60, 230, 1] - 188) <= 2
    assert abs(img[180, 20, 1] - 122) <= 2 and abs(img[180, 230, 1] - 55) <= 2


def test_time3_channels_carry_pause_time_and_speed():
    """The scaling render.py states: ch0 pause before the stroke (255 - 100 * s, floor 55
    at 2 s), ch1 time since the start (255 - 10 * s, floor 55 at 20 s), ch2 pen speed
    (55 + 200 * log2(32 v) / 6, v in px/ms, 55 at 1/32, 255 at 2)."""
    strokes = [([20, 120, 230], [60, 60, 60]), ([20, 230], [180, 180])]
    # 100 px in 200 ms (0.5 px/ms), 110 px in 1760 ms (1/16 px/ms); a 1 s pause; then 210 px
    # in 105 ms (2 px/ms) ending at 3.065 s.
    times = [0, 200, 1960, 2960, 3065]
    img = render_strokes(strokes, 256, "time3", times).astype(int)
    order = render_strokes(strokes, 256, "order3").astype(int)
    assert not np.array_equal(img, order)  # another encoding, same ink
    assert ((img > 0).any(-1) == (order > 0).any(-1)).all()
    assert abs(img[60, 70, 0] - 255) <= 1 and abs(img[180, 125, 0] - 155) <= 1  # 0 s, 1 s
    for (y, x), ms in (((60, 20), 0), ((60, 120), 200), ((60, 230), 1960), ((180, 230), 3065)):
        assert abs(img[y, x, 1] - (255 - 10 * ms / 1000)) <= 2, (y, x)
    speed = {(60, 70): 0.5, (60, 175): 1 / 16, (180, 125): 2.0}
    for (y, x), v in speed.items():
        want = 55 + 200 * min(max(np.log2(v * 32) / 6, 0), 1)
        assert abs(img[y, x, 2] - want) <= 1, (y, x, img[y, x, 2], want)
    late = render_strokes(strokes, 256, "time3", [0, 5, 30000, 65000, 65535]).astype(int)
    assert late[60, 20, 1] == 255 and late[180, 125, 1] == 55  # 20 s and later: the floor


def test_affine_identity_and_flip(raw):
    d = pack(raw)
    n = len(raw)
    eye = np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (n, 1, 1))
    np.testing.assert_array_equal(
        render(d, None, 64, "grey", LINE_WIDTH, affine=eye), render(d, None, 64, "grey", LINE_WIDTH)
    )
    flip = np.tile(np.array([[-1, 0, 255], [0, 1, 0]], np.float32), (n, 1, 1))
    flipped = render(d, None, 64, "grey", LINE_WIDTH, affine=flip).astype(int)
    mirrored = np.flip(render(d, None, 64, "grey", LINE_WIDTH), axis=2).astype(int)
    diff = np.abs(flipped - mirrored)
    assert diff.max() <= 2 and diff.mean() < 0.05
    with pytest.raises(ValueError):
        render(d, None, 64, "grey", LINE_WIDTH, affine=eye[:3])


def test_affine_shift_moves_the_drawing():
    d = pack([[([60, 120], [100, 100])]])
    shift = np.array([[[1, 0, 64], [0, 1, -32]]], np.float32)  # +16 px right, -8 px up at 64
    moved = render(d, None, 64, "grey", LINE_WIDTH, affine=shift)[0, ..., 0]
    base = render(d, None, 64, "grey", LINE_WIDTH)[0, ..., 0]
    np.testing.assert_array_equal(moved[8:56, 16:], base[16:, :48])


def test_stroke_dropout(raw):
    d = pack(raw)
    n = len(raw)
    seeds = np.arange(n, dtype=np.uint64) * 7919
    plain = render(d, None, 64, "grey", LINE_WIDTH)
    np.testing.assert_array_equal(
        render(d, None, 64, "grey", LINE_WIDTH, drop_prob=0.0, drop_seed=seeds), plain
    )
    half = render(d, None, 64, "grey", LINE_WIDTH, drop_prob=0.5, drop_seed=seeds)
    np.testing.assert_array_equal(
        half, render(d, None, 64, "grey", LINE_WIDTH, drop_prob=0.5, drop_seed=seeds)
    )
    assert (half != plain).any()
    # drop_prob=1: exactly one whole stroke survives, in its original stroke colour.
    one = render(d, None, 64, "grey", LINE_WIDTH, drop_prob=1.0, drop_seed=seeds)
    for i, strokes in enumerate(raw):
        alone = render(
            pack([strokes]), None, 64, "grey", LINE_WIDTH, drop_prob=1.0, drop_seed=seeds[i : i + 1]
        )
        np.testing.assert_array_equal(one[i], alone[0])  # independent of the batch
        got = one[i, ..., 0].astype(float)
        assert got.max() > 0
        matches = []
        for t, stroke in enumerate(strokes):
            single = render_strokes([stroke], 64)[..., 0].astype(float)  # drawn in 255
            if ((single > 0) == (got > 0)).all():
                matches.append(np.abs(single * GREYS[t] / 255 - got).max() <= 1)
        assert any(matches), i
    # Seeds matter; and drop_prob > 0 without seeds is an error.
    other = render(d, None, 64, "grey", LINE_WIDTH, drop_prob=0.5, drop_seed=seeds + np.uint64(1))
    assert (other != half).any()
    with pytest.raises(ValueError):
        render(d, None, 64, "grey", LINE_WIDTH, drop_prob=0.5)


@pytest.mark.parametrize("bad", [31, 257, 0, -64, 64.0, "64"])
def test_invalid_size_raises(bad):
    with pytest.raises(ValueError, match="img_size"):
        render(pack([[([1, 2], [3, 4])]]), None, bad, "grey", LINE_WIDTH)


def test_invalid_encoding_and_idx():
    d = pack([[([1, 2], [3, 4])]])
    with pytest.raises(ValueError, match="encoding must be one of grey, order3, time3"):
        render(d, None, 64, "rgb", LINE_WIDTH)
    with pytest.raises(ValueError, match="time3 draws per-point times.*train_raw"):
        render(d, None, 64, "time3", LINE_WIDTH)
    with pytest.raises(IndexError):
        render(d, np.array([1]), 64, "grey", LINE_WIDTH)


@pytest.mark.parametrize("size", [64, 128])
def test_agreement_with_cv2_reference(raw, size):
    ours = render(pack(raw), None, size, "grey", LINE_WIDTH)[..., 0].astype(np.int16)
    ref = np.stack([reference_strokes_image(s, size) for s in raw]).astype(np.int16)
    mad = np.abs(ours - ref).mean()
    assert mad < MAD_BOUND, mad
    assert abs(float(ours.mean()) - float(ref.mean())) < 1.5  # same amount of ink


def test_reference_image_is_the_reference_kernels_renderer():
    js = json.dumps([[[10, 200], [20, 20]], [[5], [5]]])
    img = reference_image(js, 256)
    assert (img[17:24, 20:190] == 255).all() and not img[16].any() and not img[24].any()
    assert not img[:10, :10].any()  # the one-point stroke draws nothing there
    assert reference_image(js, 64).shape == (64, 64)


def test_invalid_affine_and_line_width():
    d = pack([[([1, 2], [3, 4])]])
    bad = np.array([[[np.nan, 0, 0], [0, 1, 0]]], np.float32)
    with pytest.raises(ValueError, match="affine"):
        render(d, None, 64, "grey", LINE_WIDTH, affine=bad)
    with pytest.raises(ValueError, match="line_width"):
        render(d, None, 64, "grey", 0)


def test_strokes_far_off_canvas_are_clipped():
    d = pack([[([0, 255], [0, 255]), ([10], [10])]])
    far = np.array([[[50, 0, -3000], [0, 50, 1000]]], np.float32)
    img = render(d, None, 64, "grey", LINE_WIDTH, affine=far)
    assert img.shape == (1, 64, 64, 1)  # no crash, no write outside the image
    big = np.array([[[8, 0, -900], [0, 8, -900]]], np.float32)  # 8x zoom on the centre
    assert render(d, None, 64, "grey", LINE_WIDTH, affine=big).any()


def _model_image(strokes, size: int, affine: np.ndarray, encoding: str, times=None) -> np.ndarray:
    """The documented model in plain numpy, pixel by pixel over the whole grid (slow)."""
    channels = 1 if encoding == "grey" else 3
    from doodle.rendering.raster import _CV2_EXTRA_WIDTH, _edge_ramp

    s = size / 256
    ramp = _edge_ramp(size)
    r = (6.0 + _CV2_EXTRA_WIDTH) / 2 * s + ramp / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    acc = np.zeros((channels, size, size))
    n_pts = sum(len(xs) for xs, _ in strokes)
    first = 0
    for t, (xs, ys) in enumerate(strokes):
        pts = np.c_[xs, ys, np.ones(len(xs))] @ affine.T.astype(np.float64)
        pts = (pts + 0.5) * s - 0.5
        segs = [(0, 0)] if len(xs) == 1 else [(k, k + 1) for k in range(len(xs) - 1)]
        best = np.zeros((size, size))
        cols = np.zeros((2, size, size))
        for i, j in segs:
            (ax, ay), (bx, by) = pts[i], pts[j]
            dx, dy = bx - ax, by - ay
            l2 = dx * dx + dy * dy
            tt = np.clip(((xx - ax) * dx + (yy - ay) * dy) / l2, 0, 1) if l2 else 0 * xx
            dist = np.hypot(xx - ax - tt * dx, yy - ay - tt * dy)
            c = np.clip((r - dist) / ramp, 0, 1)
            more = c > best
            if encoding == "time3":
                ta, tb = times[first + i], times[first + j]
                g1 = 255 - 10 * np.minimum((ta + (tb - ta) * tt) / 1000, 20)
                v = np.hypot(xs[j] - xs[i], ys[j] - ys[i]) / max(tb - ta, 1)
                g2 = 55 + 200 * np.clip((np.log2(v) + 5) / 6, 0, 1) if v > 0 else 55.0
            else:
                g1 = 255 - 200 * (first + i + (j - i) * tt) / max(n_pts - 1, 1)
                g2 = 255 - 200 * (i + (j - i) * tt) / max(len(xs) - 1, 1)
            cols[0][more] = np.broadcast_to(g1, c.shape)[more]
            cols[1][more] = np.broadcast_to(g2, c.shape)[more]
            best = np.maximum(best, c)
        g0 = 255 - min(t, 10) * 13
        if encoding == "time3":
            pause = times[first] - times[first - 1] if t else 0
            g0 = 255 - 100 * min(pause / 1000, 2)
        targets = [g0, *cols][:channels]
        for ch, colour in enumerate(targets):
            acc[ch] += (colour - acc[ch]) * best
        first += len(xs)
    return np.moveaxis(np.floor(acc + 0.5), 0, -1)


@pytest.mark.parametrize("size", [37, 64, 128])
@pytest.mark.parametrize("encoding", ["grey", "order3", "time3"])
def test_kernel_matches_plain_model(raw, size, encoding):
    rng = np.random.default_rng(size)
    sub = raw[:6] + [[([30], [40]), ([30, 30], [200, 200]), ([250, 5], [5, 250])]]
    n = len(sub)
    ang = rng.uniform(-0.5, 0.5, n)
    sc = rng.uniform(0.6, 1.4, n)
    aff = np.zeros((n, 2, 3), np.float32)
    aff[:, 0, 0], aff[:, 0, 1] = sc * np.cos(ang), -sc * np.sin(ang)
    aff[:, 1, 0], aff[:, 1, 1] = sc * np.sin(ang), sc * np.cos(ang)
    aff[:, :, 2] = rng.uniform(-40, 40, (n, 2))
    d = with_times(pack(sub), size)
    ours = render(d, None, size, encoding, LINE_WIDTH, affine=aff).astype(int)
    for i, strokes in enumerate(sub):
        times = [int(v) for ts in d.times(i) for v in ts]
        model = _model_image(strokes, size, aff[i], encoding, times)
        # float32 lanes vs float64 here: a rounding step at most, on a few pixels.
        diff = np.abs(ours[i] - model)
        assert diff[..., 0].max() <= 2 and diff[..., 0].mean() < 0.05, i
        if encoding != "grey":
            # Where two segments of a stroke cover a pixel equally (fully, at a joint), the
            # colour channels take the first one's colour; float32 vs float64 can break such a
            # tie the other way: a rare pixel off by up to one segment's progress step.
            assert (diff[..., 1:] > 2).mean() < 0.01 and diff[..., 1:].mean() < 0.2, i


_PLAIN_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from doodle.rendering import raster as render
from doodle.data.strokes import Drawings
assert not render.FAST_PATH
z = np.load(sys.argv[2])
d = Drawings(z["xy"], z["so"], z["do"], z["t"])
out = {}
for size in (32, 64, 128):
    for enc in ("grey", "order3", "time3"):
        out[f"{size}-{enc}"] = render.render(d, None, size, enc, 6.0, z["affine"], 0.2, z["seeds"])
np.savez(sys.argv[3], **out)
"""


def test_plain_fallback_draws_identical_images(raw, tmp_path):
    """The plain-numba primitives (what a machine whose numba cannot build the vector code
    gets) give exactly the fast path's images: every encoding, augmented, 3 sizes."""
    import subprocess

    from doodle.rendering import raster as render_module
    from doodle.rendering.augment import Augment, random_affines

    # The fast path compiles wherever numba/llvmlite target x86-64 or arm64: if it does not,
    # that is a regression this test reports (the fallback would then be all there is).
    assert render_module.FAST_PATH, "the renderer's vector fast path did not compile"
    rng = np.random.default_rng(5)
    d = with_times(pack(raw))
    affine = random_affines(
        rng, len(raw), Augment(flip=0.5, scale=0.2, shift=0.1, rotate=15, stroke_dropout=0.0)
    )
    seeds = rng.integers(0, 2**63, len(raw), dtype=np.uint64)
    np.savez(
        tmp_path / "in.npz",
        xy=d.xy,
        so=d.stroke_offsets,
        do=d.drawing_offsets,
        t=d.t,
        affine=affine,
        seeds=seeds,
    )
    env = dict(__import__("os").environ, DOODLE_RENDER="plain")
    root = str(Path(__file__).resolve().parents[2])
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            _PLAIN_SCRIPT,
            root,
            str(tmp_path / "in.npz"),
            str(tmp_path / "out.npz"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    plain = np.load(tmp_path / "out.npz")
    for key in plain.files:
        size, enc = key.split("-")
        fast = render(d, None, int(size), enc, 6.0, affine, 0.2, seeds)
        assert np.array_equal(fast, plain[key]), key


def test_fast_path_failure_falls_back_with_a_warning(monkeypatch):
    from doodle.rendering import raster as render_module
    from doodle.rendering import simd as render_simd

    def broken():
        raise RuntimeError("llvmlite changed")

    monkeypatch.setattr(render_simd, "probe", broken)
    with pytest.warns(RuntimeWarning, match="vector fast path does not compile.*llvmlite"):
        fast, prims = render_module._choose_primitives()
    assert not fast and prims[0] is render_module._cover8_plain
