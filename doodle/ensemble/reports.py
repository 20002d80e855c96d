"""Pictures and tables for people (``dvc plots show``), all written atomically.

* :func:`samples_grid` -- the ensemble stage's ``reports/samples.png``: a few drawings of each
  class, rendered exactly as a member sees them (:func:`doodle.rendering.raster.render` with
  the member's settings; :func:`shown_member` says whose);
* :func:`per_class_report` -- the ensemble stage's per-class MAP@3 and most confused
  (true, predicted) pairs on the holdout, as CSV (for DVC's plot templates) and PNG.

Figures are drawn with matplotlib's object API on the Agg canvas: no pyplot, no global
backend switch, nothing shown on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from doodle.data.shards import open_shard, read_classes, train_shard_paths
from doodle.fileio import atomic_path, write_csv
from doodle.metrics import confused_pairs, map3, per_class_map3
from doodle.rendering.raster import ENCODINGS, render

if TYPE_CHECKING:
    from doodle.config import MemberConfig, Params

_GAP = 2  # pixels between tiles
_GAP_GREY = 96  # tiles are black: a mid-grey grid shows where each one ends
_DPI = 100


def _save_png(fig: Figure, out_png: Path) -> Path:
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, pil_kwargs={"optimize": True})
    return out_png


def _shard_files(shard_path: Path | Sequence[Path]) -> list[Path]:
    if isinstance(shard_path, (str, Path)):
        p = Path(shard_path)
        return train_shard_paths(p) if p.is_dir() else [p]
    return [Path(p) for p in shard_path]


def _pick_classes(n: int, max_classes: int) -> np.ndarray:
    """All classes, or ``max_classes`` spread evenly over the (alphabetical) class list."""
    if n <= max_classes:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_classes).round().astype(np.int64))


def sample_tiles(
    files: Sequence[Path],
    n_classes: int,
    img_size: int,
    encoding: str,
    line_width: float,
    per_class: int = 6,
    max_classes: int = 24,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The renders :func:`samples_grid` shows: ``(chosen classes, tiles (R, per_class, S, S,
    C) uint8, found per row)``, drawn at ``img_size`` in ``encoding`` with ``line_width`` (a
    member's settings). Samples are the first drawings of each class in file order (shards
    are shuffled, so they are a random sample); missing ones stay black."""
    chosen = _pick_classes(n_classes, max_classes)
    channels = ENCODINGS[encoding][0]
    tiles = np.zeros((len(chosen), per_class, img_size, img_size, channels), np.uint8)
    found = np.zeros(len(chosen), np.int64)
    for path in files:
        if (found >= per_class).all():
            break
        shard = open_shard(path)
        label = np.asarray(shard.label)
        for row, c in enumerate(chosen):
            need = per_class - found[row]
            if need <= 0:
                continue
            idx = np.flatnonzero(label == c)[:need]
            if len(idx):
                tiles[row, found[row] : found[row] + len(idx)] = render(
                    shard.drawings, idx, img_size, encoding, line_width
                )
                found[row] += len(idx)
    return chosen, tiles, found


def shown_member(params: Params, metrics: dict) -> MemberConfig:
    """Whose view of the drawings reports/samples.png shows: the best member's, or, when it
    reads point sequences, the best image member's on the held-apart rows (the recipe's
    settings when every member is a sequence one)."""
    best = params.member(metrics["best_member"])
    scores = metrics["members"]
    ranked = sorted(scores, key=scores.get, reverse=True)
    images = [m for m in ranked if not params.member(m).sequence]
    return params.member(images[0]) if best.sequence and images else best


def samples_grid(
    shard_path: Path | Sequence[Path],
    classes: Sequence[str] | None,
    out_png: Path,
    img_size: int,
    encoding: str,
    line_width: float,
    per_class: int = 6,
    max_classes: int = 24,
) -> Path:
    """A grid of sample drawings as a member sees them (its ``img_size``, ``encoding`` and
    ``line_width``): one row per class (labelled), ``per_class`` columns.

    ``shard_path`` is a shard file, a list of them, or a shard folder (its train shards;
    ``classes=None`` then reads its ``classes.json``). With more than ``max_classes``
    classes, that many are taken evenly spaced through the class list; a class with fewer
    than ``per_class`` drawings gets its count after its name.
    """
    if classes is None:
        classes = read_classes(Path(shard_path))
    chosen, tiles, found = sample_tiles(
        _shard_files(shard_path),
        len(classes),
        img_size,
        encoding,
        line_width,
        per_class,
        max_classes,
    )
    channels = tiles.shape[-1]

    # One mosaic image (tiles separated by grey lines) and one imshow: small and fast.
    step = img_size + _GAP
    h, w = len(chosen) * step + _GAP, per_class * step + _GAP
    mosaic = np.full((h, w, channels), _GAP_GREY, np.uint8)
    for r in range(len(chosen)):
        for k in range(per_class):
            y, x = _GAP + r * step, _GAP + k * step
            mosaic[y : y + img_size, x : x + img_size] = tiles[r, k]
    names = [
        f"{classes[c]} ({found[r]})" if found[r] < per_class else str(classes[c])
        for r, c in enumerate(chosen)
    ]

    # Small renders shown bigger (pixel for pixel), big ones at 64 px a tile: the PNG stays
    # a few hundred KB whatever img_size is.
    scale = max(1, 96 // img_size) if img_size <= 64 else 64 / img_size
    label_w, top, bottom = 180, 40, 10
    fig_w, fig_h = label_w + round(w * scale) + 10, top + round(h * scale) + bottom
    fig = Figure(figsize=(fig_w / _DPI, fig_h / _DPI))
    ax = fig.add_axes((label_w / fig_w, bottom / fig_h, w * scale / fig_w, h * scale / fig_h))
    ax.imshow(
        mosaic[..., 0] if channels == 1 else mosaic,
        cmap="gray",
        vmin=0,
        vmax=255,
        interpolation="nearest" if scale >= 1 else "antialiased",
    )
    ax.set_yticks([_GAP + r * step + img_size / 2 for r in range(len(chosen))], names, fontsize=8)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    shown = "all" if len(chosen) == len(classes) else f"{len(chosen)} of"
    fig.suptitle(
        f"Sample drawings as the model sees them ({img_size} px, {encoding}, line width "
        f"{line_width:g}); "
        f"{shown} {len(classes)} classes",
        fontsize=9,
        y=1 - 8 / fig_h,
        va="top",
    )
    return _save_png(fig, out_png)


def _barh(
    labels: Sequence[str],
    values: Sequence[float],
    notes: Sequence[str],
    title: str,
    xlabel: str,
    out_png: Path,
    xlim: tuple[float, float] | None = None,
    vline: float | None = None,
) -> Path:
    """A horizontal bar chart, first item at the top, each bar annotated with its note."""
    n = max(len(labels), 1)
    fig = Figure(figsize=(8, 1.2 + 0.22 * n))
    ax = fig.add_subplot()
    y = np.arange(len(labels))
    ax.barh(y, values, color="tab:blue")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    hi = xlim[1] if xlim else max(values, default=1) * 1.35 or 1
    for yi, v, note in zip(y, values, notes, strict=True):
        ax.text(v + hi * 0.01, yi, note, va="center", fontsize=7)
    if xlim:
        ax.set_xlim(*xlim)
    else:  # counts
        ax.set_xlim(0, hi)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if vline is not None:
        ax.axvline(vline, color="tab:red", lw=1, ls="--", label=f"all classes {vline:.3f}")
        ax.legend(loc="lower right", fontsize=8)
    if not labels:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save_png(fig, out_png)


def per_class_report(
    probs: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    out_dir: Path,
    worst: int = 40,
    pairs: int = 20,
) -> dict[str, Path]:
    """Per-class MAP@3 and the most confused pairs -> CSV + PNG files in ``out_dir``.

    ``per_class_map3.csv`` (class,map3,count; worst first, classes without rows left out),
    ``per_class_map3.png`` (the ``worst`` lowest), ``confused_pairs.csv``
    (true,pred,count,share,pair; ``share`` = count / rows of the true class) and
    ``confused_pairs.png`` (the ``pairs`` most frequent top-1 mistakes).
    """
    out_dir = Path(out_dir)
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float32)
    classes = [str(c) for c in classes]
    if probs.shape != (len(labels), len(classes)):
        raise ValueError(
            f"probs shape {probs.shape} != ({len(labels)} rows, {len(classes)} classes)"
        )
    scores = per_class_map3(probs, labels, len(classes))
    counts = np.bincount(labels, minlength=len(classes))
    present = np.flatnonzero(counts > 0)
    order = present[np.lexsort((present, scores[present]))]  # worst first, ties by index
    out = {
        "per_class_csv": write_csv(
            out_dir / "per_class_map3.csv",
            ("class", "map3", "count"),
            [(classes[i], f"{scores[i]:.4f}", int(counts[i])) for i in order],
        )
    }
    overall = map3(probs, labels) if len(labels) else float("nan")
    top = order[:worst]
    out["per_class_png"] = _barh(
        [classes[i] for i in top],
        [float(scores[i]) for i in top],
        [f"{scores[i]:.3f} (n={counts[i]})" for i in top],
        f"Holdout MAP@3 per class, worst first: "
        f"{'all' if len(top) == len(present) else f'the {len(top)} worst of'} {len(present)}"
        f" classes",
        "MAP@3",
        out_dir / "per_class_map3.png",
        xlim=(0, 1.12),
        vline=overall,
    )

    confused = confused_pairs(probs, labels, classes, n=pairs)
    n_of = dict(zip(classes, counts.tolist(), strict=True))
    rows = [
        (
            p["true"],
            p["pred"],
            p["count"],
            f"{p['count'] / n_of[p['true']]:.4f}",
            f"{p['true']} -> {p['pred']}",
        )
        for p in confused
    ]
    out["pairs_csv"] = write_csv(
        out_dir / "confused_pairs.csv", ("true", "pred", "count", "share", "pair"), rows
    )
    out["pairs_png"] = _barh(
        [r[4] for r in rows],
        [r[2] for r in rows],
        [f"{r[2]} ({float(r[3]):.0%} of {r[0]})" for r in rows],
        f"Most frequent top-1 mistakes on the holdout (true -> predicted), {len(labels):,} rows",
        "drawings",
        out_dir / "confused_pairs.png",
    )
    return out


def holdout_report(npz_path: Path, out_dir: Path) -> dict[str, Path]:
    """:func:`per_class_report` of a member's holdout prediction file (probs, label, classes)."""
    with np.load(npz_path, allow_pickle=False) as z:
        probs, labels, classes = z["probs"], z["label"], [str(c) for c in z["classes"]]
    return per_class_report(probs, labels, classes, out_dir)
