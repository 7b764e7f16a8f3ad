"""Dense layers split into independent parts against the whole product (the reference)."""

import numpy as np
import pytest

from st3d_edge.runtime.block_dense import apply, split

SLOPE = 0.2


def reference(x, weight, bias, slope, skip=None):
    y = x.astype(np.float64) @ weight.astype(np.float64) + bias
    y = np.maximum(y, slope * y)
    return y if skip is None else y + skip


def two_networks(rng, c_in=24, c_out=20):
    """A two-network matrix as the exported graph has them: interleaved input rows
    [T | S | T | S], contiguous output halves, zeros between."""
    weight = rng.normal(size=(c_in, c_out)).astype(np.float32)
    quarter, half = c_in // 4, c_out // 2
    teacher_rows = np.r_[0:quarter, 2 * quarter : 3 * quarter]
    student_rows = np.setdiff1d(np.arange(c_in), teacher_rows)
    weight[np.ix_(teacher_rows, np.arange(half, c_out))] = 0
    weight[np.ix_(student_rows, np.arange(half))] = 0
    return weight


@pytest.mark.parametrize("n", [1, 7, 1500])  # 1500: more than one block of points
def test_split_matches_whole_product(n):
    rng = np.random.default_rng(n)
    weight = two_networks(rng)
    layer = split(weight)
    assert layer.parts == 2
    x = rng.normal(size=(n, weight.shape[0])).astype(np.float32)
    bias = rng.normal(size=weight.shape[1]).astype(np.float32)
    skip = rng.normal(size=(n, weight.shape[1])).astype(np.float32)
    np.testing.assert_allclose(
        apply(x, layer, bias, SLOPE), reference(x, weight, bias, SLOPE), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        apply(x, layer, bias, SLOPE, skip), reference(x, weight, bias, SLOPE, skip), rtol=1e-5, atol=1e-5
    )


def test_broadcast_skip_and_linear_slope():
    rng = np.random.default_rng(1)
    weight = two_networks(rng)
    x = rng.normal(size=(50, weight.shape[0])).astype(np.float32)
    bias = rng.normal(size=weight.shape[1]).astype(np.float32)
    row = rng.normal(size=weight.shape[1]).astype(np.float32)
    skip = np.broadcast_to(row, (50, len(row)))
    got = apply(x, split(weight), bias, SLOPE, skip)
    np.testing.assert_allclose(got, reference(x, weight, bias, SLOPE, skip), rtol=1e-5, atol=1e-5)
    linear = apply(x, split(weight), bias, 1.0)
    np.testing.assert_allclose(linear, x.astype(np.float64) @ weight + bias, rtol=1e-5, atol=1e-5)


def test_full_matrix_is_one_part_and_empty_columns_give_the_bias():
    rng = np.random.default_rng(2)
    full = rng.normal(size=(6, 5)).astype(np.float32)
    assert split(full).parts == 1
    weight = two_networks(rng)
    weight[:, 3] = 0  # an output column no input reaches
    layer = split(weight)
    x = rng.normal(size=(9, weight.shape[0])).astype(np.float32)
    bias = rng.normal(size=weight.shape[1]).astype(np.float32)
    got = apply(x, layer, bias, SLOPE)
    np.testing.assert_allclose(got, reference(x, weight, bias, SLOPE), rtol=1e-5, atol=1e-5)
    assert np.allclose(got[:, 3], max(bias[3], SLOPE * bias[3]))
