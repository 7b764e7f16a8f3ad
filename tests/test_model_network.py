"""DescriptorNet: the fast formulation against the gather reference, and the paper's properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st3d_edge.model.network import DescriptorNet, reference_forward
from tests.helpers import EXACT, FLOAT32_SAME_MATH, assert_close
from tests.model_helpers import seeded_net, strip, wavy_patch

torch.set_num_threads(2)
POOLINGS = ["numba", "torch"]


def test_geometric_features_hand_worked():
    points = torch.tensor([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [3.0, 4.0, 12.0]])
    knn = torch.tensor([[0, 1], [1, 2], [2, 0]])
    g = DescriptorNet(d=8).geometric_features(points, knn)
    assert_close(g[0, 0], [0, 0, 0, 0], **EXACT, what="self pair")
    assert_close(g[0, 1], [-3, -4, 0, 5], **EXACT, what="p0 - p1")
    assert_close(g[2, 1], [3, 4, 12, 13], **EXACT, what="p2 - p0")
    g7 = DescriptorNet(d=8, absolute_coords=True).geometric_features(points, knn)
    assert_close(g7[1, 1], [0, 0, -12, 12, 3, 4, 0], **EXACT, what="absolute coordinates of p appended")


def test_shapes_and_parameter_names():
    net = DescriptorNet(d=16, blocks=4)
    points, knn = wavy_patch(50, 6)
    assert net(points, knn).shape == (50, 16)
    names = dict(net.named_parameters())
    assert names["blocks.0.mlp_in.linear.weight"].shape == (4, 16)
    assert names["blocks.3.lfa1.geo.linear.weight"].shape == (4, 4)
    assert names["blocks.3.lfa2.geo.linear.weight"].shape == (8, 4)
    assert names["blocks.2.mlp_out.linear.weight"].shape == (16, 16)
    assert names["blocks.2.shortcut.linear.bias"].shape == (16,)
    assert names["head_out.weight"].shape == (16, 16)
    assert net.lfa_layers == 8


@pytest.mark.parametrize("pooling", POOLINGS)
def test_fast_forward_and_gradients_match_reference(pooling):
    points, knn = wavy_patch(300, 8)
    net = seeded_net(d=16)
    upstream = torch.randn(300, 16, generator=torch.Generator().manual_seed(3)) / 300
    fast = net(points, knn, pooling=pooling)
    reference = reference_forward(net, points, knn)
    assert_close(fast.detach(), reference.detach(), **FLOAT32_SAME_MATH, what="descriptors")
    params = list(net.parameters())
    grads_fast = torch.autograd.grad((fast * upstream).sum(), params)
    grads_reference = torch.autograd.grad((reference * upstream).sum(), params)
    names = [name for name, _ in net.named_parameters()]
    for name, a, b in zip(names, grads_fast, grads_reference, strict=True):
        assert_close(a, b, **FLOAT32_SAME_MATH, what=f"gradient of {name}")


def test_absolute_coords_fast_matches_reference():
    points, knn = wavy_patch(200, 8)
    net = seeded_net(d=16, absolute_coords=True)
    assert_close(net(points, knn).detach(), reference_forward(net, points, knn).detach(), **FLOAT32_SAME_MATH)


def _dyadic(points: torch.Tensor) -> torch.Tensor:
    # Multiples of 2^-10 below 64: shifting them by an integer is exact in float32, and so
    # is every difference p - p_j, so translation invariance can be checked bit for bit.
    return torch.round(points * 1024) / 1024


@pytest.mark.parametrize("pooling", POOLINGS)
def test_translation_invariance_is_exact(pooling):
    points, knn = wavy_patch(300, 8)
    points = _dyadic(points)
    net = seeded_net(d=16)
    with torch.no_grad():
        before = net(points, knn, pooling=pooling)
        after = net(points + torch.tensor([17.0, -5.0, 3.0]), knn, pooling=pooling)
    assert_close(after, before, **EXACT, what="shifted cloud")


def test_translation_invariance_for_any_shift():
    points, knn = wavy_patch(300, 8)
    net = seeded_net(d=16).double()
    points = points.double()
    shift = torch.tensor([0.123456789, -41.5, 7.77], dtype=torch.float64)
    with torch.no_grad():
        assert_close(net(points + shift, knn), net(points, knn), **FLOAT32_SAME_MATH, what="shifted")


def test_absolute_coords_ablation_breaks_translation_invariance():
    points, knn = wavy_patch(300, 8)
    points = _dyadic(points)
    net = seeded_net(d=16, absolute_coords=True)
    with torch.no_grad():
        before = net(points, knn)
        after = net(points + torch.tensor([17.0, -5.0, 3.0]), knn)
    change = (after - before).norm(dim=1) / before.norm(dim=1)
    assert float(change.min()) > 1e-3, "every descriptor should move with the cloud"


def test_rotation_changes_descriptors():
    points, knn = wavy_patch(300, 8)
    net = seeded_net(d=16)
    quarter_turn = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    with torch.no_grad():
        before = net(points, knn)
        after = net(points @ quarter_turn.T, knn)  # same kNN graph: distances are unchanged
    change = (after - before).norm(dim=1) / before.norm(dim=1)
    assert float(change.median()) > 1e-2


@pytest.mark.parametrize("pooling", POOLINGS)
def test_permutation_equivariance(pooling):
    points, knn = wavy_patch(300, 8)
    net = seeded_net(d=16)
    perm = torch.from_numpy(np.random.default_rng(4).permutation(300))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(300)
    with torch.no_grad():
        out = net(points, knn, pooling=pooling)
        out_permuted = net(points[perm], inverse[knn[perm]], pooling=pooling)
    assert_close(out_permuted, out[perm], **FLOAT32_SAME_MATH, what="permuted cloud")


def _receptive_field(knn: torch.Tensor, index: int, hops: int) -> np.ndarray:
    try:
        from st3d_edge.geometry.receptive_field import receptive_field
    except ImportError:  # the geometry module is written in parallel; same eq. (2) by BFS
        reached, frontier = {index}, {index}
        for _ in range(hops):
            frontier = {int(j) for i in frontier for j in knn[i]} - reached
            reached |= frontier
        return np.array(sorted(reached))
    return receptive_field(knn.numpy(), index, hops)


def _strip_and_field():
    points, knn = strip(400, 8)
    centre = int(torch.argmin((points[:, 0] - 50.0).abs()))
    field = _receptive_field(knn, centre, 8)
    outside = np.setdiff1d(np.arange(400), field)
    assert len(outside), "the strip should be longer than one receptive field"
    return points, knn, centre, field, outside


@pytest.mark.parametrize("pooling", POOLINGS)
def test_moving_a_point_outside_the_receptive_field_changes_nothing(pooling):
    points, knn, centre, field, outside = _strip_and_field()
    net = seeded_net(d=16)

    def moved(index):
        shifted = points.clone()
        shifted[index] += torch.tensor([0.3, -0.7, 0.5])
        with torch.no_grad():
            return net(shifted, knn, pooling=pooling)  # the kNN graph is kept as it was

    with torch.no_grad():
        before = net(points, knn, pooling=pooling)
    far = int(outside[0])
    after_far = moved(far)
    assert_close(after_far[centre], before[centre], **EXACT, what="moved a point outside R(p)")
    assert not torch.equal(after_far[far], before[far]), "the move itself must matter somewhere"
    near = int(knn[centre, 1])
    assert not torch.equal(moved(near)[centre], before[centre]), "moved a neighbour of p"


def test_descriptor_depends_on_exactly_the_receptive_field():
    # A point 8 hops away reaches f_p through eight averages over k neighbours, a change of
    # order k^-8 that float32 rounds away; in float64 the gradient of f_p with respect to
    # every coordinate shows the dependence: nonzero on R(p), zero elsewhere.
    points, knn, centre, field, _ = _strip_and_field()
    net = seeded_net(d=16).double()
    points = points.double().requires_grad_(True)
    descriptors = net(points, knn, pooling="torch")
    (grad,) = torch.autograd.grad(descriptors[centre].sum(), points)
    depends = np.flatnonzero(grad.abs().sum(dim=1).numpy() > 0)
    assert_close(depends, field, **EXACT, what="points whose coordinates f_p depends on")
    assert len(np.setdiff1d(field, _receptive_field(knn, centre, 7))), "R(p) has an 8th hop"


def test_bad_inputs_are_refused():
    net = DescriptorNet(d=8)
    points, knn = wavy_patch(20, 4)
    with pytest.raises(ValueError, match="points must be"):
        net(points[:, :2], knn)
    with pytest.raises(ValueError, match="knn must be"):
        net(points, knn[:10])
    with pytest.raises(ValueError, match="multiple of 4"):
        DescriptorNet(d=10)
