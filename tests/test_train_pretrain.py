from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from st3d_edge.config import get_preset
from st3d_edge.errors import St3dError
from st3d_edge.geometry.knn import knn_indices
from st3d_edge.geometry.sampling import sample_indices
from st3d_edge.geometry.scale import scale_s
from st3d_edge.model.chamfer import chamfer_reference
from st3d_edge.model.decoder import Decoder
from st3d_edge.model.network import DescriptorNet, reference_forward
from st3d_edge.train.checkpoint import load_checkpoint
from st3d_edge.train.pretrain import ReceptiveFieldLoss, pretrain
from tests.helpers import EXACT, FLOAT32_SAME_MATH, FLOAT64_SOLVER, assert_close


def tiny(epochs: int = 2):
    preset = get_preset("tiny")
    preset.model.n = 128
    preset.pretrain.scenes_train = 3
    preset.pretrain.scenes_val = 2
    preset.pretrain.epochs = epochs
    return preset


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("pre") / "teacher"
    return pretrain(run, tiny(2), progress=False)


def test_run_folder_layout_and_metrics(two_epochs):
    run = two_epochs.run_dir
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "teacher.pt", "last.pt", "metrics.jsonl", "scale.json", "cache"} <= names
    diagnostics = json.loads((run / "diagnostics.json").read_text())
    assert diagnostics["effective_rank"] == two_epochs.effective_rank
    assert 1.0 <= two_epochs.effective_rank <= diagnostics["d"] == 16
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert {"epoch", "train_loss", "val_loss", "seconds", "best"} <= set(r)
        assert np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) and r["seconds"] > 0
    best = min(records, key=lambda r: r["val_loss"])
    state = load_checkpoint(run / "teacher.pt")
    assert state["epoch"] == best["epoch"] == two_epochs.best_epoch
    assert_close(state["val_loss"], best["val_loss"], **EXACT, what="best val loss")
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["n"] == 128 and config["job"]["kind"] == "teacher"


def test_scale_matches_scenes_recomputed_from_scratch(two_epochs):
    from st3d_edge.data.scenes import pretraining_scene

    preset = tiny()
    pc, model = preset.pretrain, preset.model
    pairs = []
    for i in range(pc.scenes_train):
        raw = pretraining_scene(
            np.random.default_rng([pc.seed, 0, i]), 4 * model.n, objects=pc.objects_per_scene
        )
        pts = raw[sample_indices(raw, model.n, model.sampler)]
        pairs.append((pts, knn_indices(pts, model.k)))
    saved = json.loads((two_epochs.run_dir / "scale.json").read_text())["s"]
    assert_close(saved, scale_s(pairs), **FLOAT64_SOLVER, what="s")


def test_mixed_scenes_reach_the_network_at_one_spacing(tmp_path):
    """Depth scenes (metres) and surface scenes (~6 units) each divided by their own kind's s:
    after scaling, both kinds have mean neighbour distance 1, as a category's scans will."""
    from st3d_edge.data.depth_scenes import depth_scene
    from st3d_edge.data.scenes import pretraining_scene
    from st3d_edge.train.cache import CloudSet
    from st3d_edge.train.pretrain import kind_scales, scene_kind

    preset = tiny(1)
    preset.pretrain.scenes = "mixed"
    preset.pretrain.scenes_train = 4
    result = pretrain(tmp_path / "teacher", preset, progress=False)
    saved = json.loads((result.run_dir / "scale.json").read_text())["s_by_kind"]
    assert set(saved) == {"depth", "surface"}
    assert saved["surface"] > 10 * saved["depth"]  # the units differ; one s could not serve both
    pc, model = preset.pretrain, preset.model
    for i in range(pc.scenes_train):
        rng = np.random.default_rng([pc.seed, 0, i])
        kind = scene_kind("mixed", i)
        raw = (
            depth_scene(rng)
            if kind == "depth"
            else pretraining_scene(rng, 4 * model.n, objects=pc.objects_per_scene)
        )
        pts = raw[sample_indices(raw, model.n, model.sampler)] / saved[kind]
        spacing = scale_s([(pts, knn_indices(pts, model.k))])
        assert 0.7 < spacing < 1.4, (kind, spacing)
    clouds = CloudSet(sorted((result.run_dir / "cache").glob("*.npz")))
    assert set(kind_scales(clouds.scale_pairs(), "surface")) == {"surface"}


def test_resume_equals_uninterrupted_run(two_epochs, tmp_path):
    torch.set_num_threads(1)
    run = tmp_path / "teacher"
    pretrain(run, tiny(1), progress=False)
    pretrain(run, tiny(2), resume=True, progress=False)
    whole = load_checkpoint(two_epochs.run_dir / "last.pt")
    resumed = load_checkpoint(run / "last.pt")
    assert resumed["epoch"] == whole["epoch"] == 2
    for module in ("teacher", "decoder"):
        for name, value in whole["modules"][module].items():
            assert_close(
                resumed["modules"][module][name].numpy(), value.numpy(), **EXACT, what=f"{module} {name}"
            )
    a = [json.loads(x) for x in (two_epochs.run_dir / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["train_loss"], r["val_loss"]) for r in a] == [(r["train_loss"], r["val_loss"]) for r in b]


def test_scenes_and_point_draws_use_separate_random_streams(tmp_path, monkeypatch):
    """No two draws (scene i of a split, a step's points, a validation scene's points) share a
    numpy stream; SeedSequence state is compared, since e.g. keys (a, b) and (a, b, 0) coincide."""
    import inspect

    import st3d_edge.train.pretrain as pretrain_module

    real, streams = pretrain_module.seeded_rng, {}

    def recording(*keys):
        state = tuple(np.random.SeedSequence([int(k) for k in keys]).generate_state(4).tolist())
        streams.setdefault(state, set()).add((inspect.stack()[1].function, keys))
        return real(*keys)

    torch.set_num_threads(1)
    monkeypatch.setattr(pretrain_module, "seeded_rng", recording)
    pretrain(tmp_path / "teacher", tiny(2), progress=False)
    purposes = {function for uses in streams.values() for function, _ in uses}
    assert purposes == {"make", "loss_fn", "val_fn"}  # scenes, step points, validation points
    # validation points are the same every epoch (one key per scene); everything else is unique
    assert all(len(uses) == 1 for uses in streams.values()), streams


def test_existing_run_is_not_silently_overwritten(two_epochs):
    with pytest.raises(St3dError, match="already holds a training run"):
        pretrain(two_epochs.run_dir, tiny(2), progress=False)


def _receptive_field_by_sets(knn: np.ndarray, p: int, hops: int) -> list[int]:
    reached, frontier = {p}, {p}
    for _ in range(hops):
        frontier = {int(q) for f in frontier for q in knn[f]} - reached
        reached |= frontier
    return sorted(reached)


def test_receptive_field_loss_matches_obvious_computation():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    points_np = rng.normal(size=(200, 3)).astype(np.float32)
    knn_np = knn_indices(points_np, 6)
    net, decoder = DescriptorNet(d=16, blocks=2), Decoder(16, m=32)
    points, knn = torch.from_numpy(points_np), torch.from_numpy(knn_np.astype(np.int64))
    chosen = [3, 50, 199]
    fast = ReceptiveFieldLoss(hops=4, device="cpu")(net, decoder, points, knn, knn_np, chosen)
    features = reference_forward(net, points, knn)
    losses = []
    for p in chosen:
        region = points[_receptive_field_by_sets(knn_np, p, 4)]
        losses.append(chamfer_reference(decoder(features[p : p + 1])[0], region - region.mean(0)))
    expected = float(torch.stack(losses).mean().detach())
    assert_close(float(fast.detach()), expected, **FLOAT32_SAME_MATH, what="loss")
