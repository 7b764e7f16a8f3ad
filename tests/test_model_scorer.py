"""Decoder and Scorer: the formulas written out by hand, and the calibration checks."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from st3d_edge.model.decoder import Decoder
from st3d_edge.model.network import reference_forward
from st3d_edge.model.scorer import Scorer
from tests.helpers import EXACT, FLOAT32_SAME_MATH, assert_close
from tests.model_helpers import seeded_net, wavy_patch

torch.set_num_threads(2)


def test_decoder_is_the_papers_mlp():
    torch.manual_seed(0)
    decoder = Decoder(16, m=32)
    x = torch.randn(5, 16)
    hidden = F.leaky_relu(decoder.hidden2(F.leaky_relu(decoder.hidden1(x), 0.05)), 0.05)
    expected = decoder.out(hidden).view(5, 32, 3)
    out = decoder(x)
    assert out.shape == (5, 32, 3)
    assert_close(out.detach(), expected.detach(), **EXACT)
    assert decoder.hidden1.out_features == decoder.hidden2.out_features == 128
    assert decoder.out.out_features == 3 * 32
    assert Decoder(64).m == 1024


def _scorer(s=0.5, seed=1):
    teacher, student = seeded_net(d=16, seed=seed), seeded_net(d=16, seed=seed + 1)
    gen = torch.Generator().manual_seed(seed)
    mu = torch.randn(16, generator=gen)
    sigma = torch.rand(16, generator=gen) + 0.5
    return Scorer(teacher, student, s, mu.numpy(), sigma.numpy()), mu, sigma


def test_scores_follow_eq_6():
    scorer, mu, sigma = _scorer(s=0.5)
    points, knn = wavy_patch(200, 8)
    raw = points * 0.5
    with torch.no_grad():
        scores = scorer(raw, knn)
        f_t = reference_forward(scorer.teacher, points, knn)
        f_s = reference_forward(scorer.student, points, knn)
        expected = ((f_s - (f_t - mu) / sigma) ** 2).sum(dim=1).sqrt()
    assert scores.shape == (200,)
    assert_close(scores, expected, **FLOAT32_SAME_MATH, what="A(p)")
    f_s_debug, f_t_debug = scorer.features(raw, knn)
    assert_close(f_t_debug.detach(), ((f_t - mu) / sigma), **FLOAT32_SAME_MATH, what="normalized teacher")
    assert_close(f_s_debug.detach(), f_s, **FLOAT32_SAME_MATH, what="student")


def test_scale_is_applied_inside():
    scorer_half, _, _ = _scorer(s=2.0)
    scorer_one = copy.deepcopy(scorer_half)
    scorer_one.scale.fill_(1.0)
    points, knn = wavy_patch(100, 8)
    with torch.no_grad():
        assert_close(scorer_half(points * 2.0, knn), scorer_one(points, knn), **EXACT)


def test_student_equal_to_normalized_teacher_scores_zero():
    teacher = seeded_net(d=16)
    scorer = Scorer(teacher, copy.deepcopy(teacher), 1.0, torch.zeros(16).numpy(), torch.ones(16).numpy())
    points, knn = wavy_patch(100, 8)
    with torch.no_grad():
        assert_close(scorer(points, knn), torch.zeros(100), **EXACT)


def test_buffers_travel_with_the_state_dict():
    scorer, _, _ = _scorer()
    state = scorer.state_dict()
    assert {"scale", "mu", "sigma"} <= set(state)
    assert "teacher.head_out.weight" in state and "student.blocks.0.mlp_in.linear.weight" in state


@pytest.mark.parametrize(
    ("s", "mu", "sigma", "message"),
    [
        (0.0, [0.0] * 16, [1.0] * 16, "scale s must be positive"),
        (1.0, [0.0] * 8, [1.0] * 16, "shape"),
        (1.0, [0.0] * 16, [1.0] * 15 + [0.0], "sigma must be positive"),
    ],
)
def test_bad_calibration_is_refused(s, mu, sigma, message):
    teacher, student = seeded_net(d=16), seeded_net(d=16, seed=1)
    with pytest.raises(ValueError, match=message):
        Scorer(teacher, student, s, mu, sigma)
