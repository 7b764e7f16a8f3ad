"""PRO / AU-PRO and image AUROC against slow, obvious implementations."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.evaluation.auroc import image_auroc
from st3d_edge.evaluation.pro import LIMITS, area_to_limit, au_pro, au_pro_at_limits, label_regions, pro_curve
from tests.helpers import FLOAT64_SOLVER, assert_close

# Sums of many 1/|region| terms in a different order: float64 round-off, not solver error.
CUMULATIVE_SUMS = FLOAT64_SOLVER


def regions_by_flood_fill(gt: np.ndarray) -> list[np.ndarray]:
    """8-connected components, found the obvious way (a stack-based flood fill)."""
    gt = np.asarray(gt, dtype=bool)
    seen = np.zeros_like(gt)
    regions = []
    for r0, c0 in zip(*np.nonzero(gt), strict=True):
        if seen[r0, c0]:
            continue
        mask = np.zeros_like(gt)
        stack = [(r0, c0)]
        seen[r0, c0] = True
        while stack:
            r, c = stack.pop()
            mask[r, c] = True
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < gt.shape[0] and 0 <= cc < gt.shape[1] and gt[rr, cc] and not seen[rr, cc]:
                        seen[rr, cc] = True
                        stack.append((rr, cc))
        regions.append(mask)
    return regions


def pro_curve_slow(maps, gts):
    """One full pass over all images for every distinct threshold, highest first."""
    pairs = zip(maps, gts, strict=True)
    masks = [np.zeros(np.shape(m), bool) if g is None else np.asarray(g, bool) for m, g in pairs]
    regions = [(i, reg) for i, g in enumerate(masks) for reg in regions_by_flood_fill(g)]
    good_total = sum(int((~g).sum()) for g in masks)
    fprs, pros = [0.0], [0.0]
    for t in np.unique(np.concatenate([np.ravel(m) for m in maps]))[::-1]:
        positive = [np.asarray(m) >= t for m in maps]
        fp = sum(int((p & ~g).sum()) for p, g in zip(positive, masks, strict=True))
        overlap = [(positive[i] & reg).sum() / reg.sum() for i, reg in regions]
        fprs.append(fp / good_total)
        pros.append(float(np.mean(overlap)))
    return np.array(fprs + [1.0]), np.array(pros + [1.0])


def area_slow(x, y, limit):
    """Segment by segment; the segment that crosses the limit is cut with linear interpolation."""
    area = 0.0
    for x0, x1, y0, y1 in zip(x[:-1], x[1:], y[:-1], y[1:], strict=True):
        if x0 >= limit:
            break
        if x1 <= limit:
            area += 0.5 * (y0 + y1) * (x1 - x0)
        else:
            y_at = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            area += 0.5 * (y0 + y_at) * (limit - x0)
    return area


def random_case(seed, images=4, shape=(9, 11), levels=None, defect_rate=0.6):
    rng = np.random.default_rng(seed)
    maps, gts = [], []
    for i in range(images):
        m = rng.random(shape)
        if levels:  # quantised scores give many ties, also across good and defect pixels
            m = np.round(m * levels) / levels
        maps.append(m)
        if i == 0 or rng.random() > defect_rate:
            gts.append(None if i == 0 else np.zeros(shape, bool))
        else:
            gts.append(rng.random(shape) < 0.12)
    if not any(g is not None and g.any() for g in gts):
        gts[-1] = np.zeros(shape, bool)
        gts[-1][2, 3] = True  # a one-pixel region
    return maps, gts


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [None, 4, 9])
def test_pro_curve_matches_threshold_sweep(seed, levels):
    maps, gts = random_case(seed, levels=levels)
    fpr, pro = pro_curve(maps, gts)
    fpr_ref, pro_ref = pro_curve_slow(maps, gts)
    assert_close(fpr, fpr_ref, **CUMULATIVE_SUMS, what="fpr")
    assert_close(pro, pro_ref, **CUMULATIVE_SUMS, what="pro")
    for limit in LIMITS:
        assert_close(au_pro(maps, gts, limit), area_slow(fpr_ref, pro_ref, limit) / limit, **CUMULATIVE_SUMS)


def test_regions_are_eight_connected():
    gt = np.zeros((6, 6), bool)
    gt[0, 0] = gt[1, 1] = gt[2, 2] = True  # a diagonal line: one region, not three
    gt[4, 5] = True
    labels, count = label_regions(gt)
    assert count == 2 == len(regions_by_flood_fill(gt))
    assert labels[0, 0] == labels[1, 1] == labels[2, 2] != labels[4, 5]


def test_every_region_weighs_the_same_whatever_its_size():
    # A big region found completely and a one-pixel region missed: PRO 1/2 at the threshold
    # that finds the big one without false positives.
    m = np.zeros((5, 5))
    gt = np.zeros((5, 5), bool)
    gt[0:3, 0:3] = True
    m[0:3, 0:3] = 1.0
    gt[4, 4] = True  # its score 0 ties with every good pixel
    fpr, pro = pro_curve([m], [gt])
    assert_close(fpr, [0.0, 0.0, 1.0, 1.0], **CUMULATIVE_SUMS, what="fpr")
    assert_close(pro, [0.0, 0.5, 1.0, 1.0], **CUMULATIVE_SUMS, what="pro")


def test_perfect_map_gives_one_at_every_limit():
    maps, gts = random_case(11, levels=None)
    perfect = [np.zeros(m.shape) if g is None else g.astype(float) for m, g in zip(maps, gts, strict=True)]
    fpr, pro = pro_curve(perfect, gts)
    for limit, value in au_pro_at_limits(fpr, pro).items():
        assert_close(value, 1.0, **CUMULATIVE_SUMS, what=f"limit {limit}")


def test_constant_map_is_the_diagonal_chance_line():
    maps, gts = random_case(12)
    flat = [np.full(m.shape, 0.5) for m in maps]
    assert_close(au_pro(flat, gts, 1.0), 0.5, **CUMULATIVE_SUMS, what="chance")
    assert_close(au_pro(flat, gts, 0.3), 0.15, **CUMULATIVE_SUMS, what="chance at 0.3")


def test_limit_on_a_curve_point_needs_no_interpolation():
    x = np.array([0.0, 0.1, 0.3, 0.3, 1.0])
    y = np.array([0.0, 0.5, 0.6, 0.9, 1.0])
    assert_close(area_to_limit(x, y, 0.3), area_slow(x, y, 0.3), **CUMULATIVE_SUMS)
    assert_close(area_to_limit(x, y, 0.2), area_slow(x, y, 0.2), **CUMULATIVE_SUMS)


def test_images_of_different_sizes():
    maps = [np.random.default_rng(0).random((4, 5)), np.random.default_rng(1).random((6, 3))]
    gts = [None, np.eye(6, 3, dtype=bool)]
    fpr, pro = pro_curve(maps, gts)
    fpr_ref, pro_ref = pro_curve_slow(maps, gts)
    assert_close(pro, pro_ref, **CUMULATIVE_SUMS, what="pro")
    assert_close(fpr, fpr_ref, **CUMULATIVE_SUMS, what="fpr")


def test_undefined_curves_are_refused():
    with pytest.raises(ValueError, match="no ground-truth region"):
        pro_curve([np.zeros((3, 3))], [None])
    with pytest.raises(ValueError, match="no pixel outside"):
        pro_curve([np.zeros((2, 2))], [np.ones((2, 2), bool)])
    with pytest.raises(ValueError, match="differ in shape"):
        pro_curve([np.zeros((2, 2))], [np.ones((3, 2), bool)])


def auroc_pairwise(scores, labels):
    pos = [s for s, lab in zip(scores, labels, strict=True) if lab]
    neg = [s for s, lab in zip(scores, labels, strict=True) if not lab]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(8))
def test_image_auroc_matches_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 40))
    labels = rng.random(n) < 0.5
    labels[0], labels[1] = True, False
    scores = np.round(rng.random(n) * (3 if seed % 2 else 1000)) + labels * rng.random()
    assert_close(image_auroc(scores, labels), auroc_pairwise(scores, labels), **CUMULATIVE_SUMS)


def test_image_auroc_known_values():
    assert image_auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert image_auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert image_auroc([0.5, 0.5, 0.5], [0, 1, 1]) == 0.5
    with pytest.raises(ValueError):
        image_auroc([0.1, 0.2], [1, 1])
