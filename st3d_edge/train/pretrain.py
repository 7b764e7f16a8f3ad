"""Teacher pretraining by reconstructing local receptive fields (paper 3.1 and 4.1).

Decisions the paper leaves open, as taken here:

- Scenes come from ``st3d_edge.data.scenes.pretraining_scene`` (ModelNet10 objects when a
  folder is given, procedural shapes otherwise), from ``st3d_edge.data.depth_scenes`` (single
  depth views of generic solids on a table, like the scans the teacher will describe), or both
  alternately, as ``PretrainConfig.scenes`` says; scene ``i`` of a split is drawn from a numpy
  generator seeded with (seed, split, i), so the dataset depends on the seed alone. Each scene
  is reduced to n points by the configured sampler and its kNN graph built once (``cache/``).
- s (eq. 4) is computed over the training scenes as sampled (what the network sees) and
  stored in ``scale.json``; every scene's coordinates are divided by it. With ``mixed`` scenes,
  each kind has its own s: surface-sampled objects are ~6 units wide, depth scenes are in
  metres, and one s over both left the depth scenes ~35x finer than the surface ones and
  neither at the unit spacing that a category's own s gives the student. Per kind, every
  scene reaches the network at the same point spacing, whatever its units.
- Loss of a step: the mean over the ``samples_per_step`` (16) random points of the Chamfer
  distance between D(f_p) and the centred receptive field R(p) (eq. 3 sums; the mean only
  rescales the learning rate's effect, and keeps the loss comparable across settings). The 16
  points of scene i in epoch e are drawn from a generator seeded with
  (seed, TRAIN_POINTS_STREAM, e, i), a stream no scene or validation draw shares.
- R(p) uses hops = number of LFA layers (8 for 4 blocks), centred on its mean (paper).
- Validation: the same loss on fixed points per validation scene (seeded with
  (seed, VAL_POINTS_STREAM, j)), averaged over scenes. ``teacher.pt`` keeps the teacher (and
  decoder) with the lowest one.
- Adam with L2 weight decay (``torch.optim.Adam(weight_decay=...)``), as "Adam with weight decay"
  reads; lr 1e-3, weight decay 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st3d_edge.config import Preset, to_dict
from st3d_edge.io_utils import write_json_atomic
from st3d_edge.train import distributed as dist_utils
from st3d_edge.train.cache import CloudSet, cache_path, cached_cloud, caching
from st3d_edge.train.checkpoint import save_checkpoint
from st3d_edge.train.common import build_net, cloud_tensors, seeded_rng
from st3d_edge.train.loop import Loop, run_loop
from st3d_edge.train.runfolder import CACHE, open_run, run_config

SPLIT_TRAIN, SPLIT_VAL = 0, 1
# numpy seed streams besides the scenes' (seed, split, i); distinct second keys keep them apart
VAL_POINTS_STREAM = 104_729
TRAIN_POINTS_STREAM = 130_363
TEACHER = "teacher.pt"
SCALE = "scale.json"
DIAGNOSTICS = "diagnostics.json"
RANK_POINTS_PER_CLOUD = 4096  # points per validation scene in the effective-rank diagnostic
SCENE_KINDS = ("surface", "depth", "mixed")


@dataclass
class PretrainResult:
    run_dir: Path
    s: float
    best_val: float
    best_epoch: int
    metrics: list[dict]
    effective_rank: float | None = None  # of the best teacher's features on the validation scenes


def scene_cache(
    cache_dir: Path,
    preset: Preset,
    split: int,
    count: int,
    modelnet: Path | None,
    env: dist_utils.Dist,
    progress: bool = False,
) -> CloudSet:
    """Sample and cache the scenes of one split (each rank fills its share), then list them all."""
    from st3d_edge.data.depth_scenes import depth_scene
    from st3d_edge.data.scenes import pretraining_scene

    pc, model = preset.pretrain, preset.model
    if pc.scenes not in SCENE_KINDS:
        raise ValueError(
            f"unknown pretraining scene kind {pc.scenes!r}; choose from {', '.join(SCENE_KINDS)}"
        )
    surface = pc.surface_points or 4 * model.n
    paths = []
    for i in caching(list(range(count)), f"cache scenes ({count})", progress and env.is_main):
        if scene_kind(pc.scenes, i) == "depth":
            settings = {"kind": "depth-scene", "seed": pc.seed, "split": split, "index": i}

            def make(i=i):
                return depth_scene(seeded_rng(pc.seed, split, i))

        else:
            settings = {
                "kind": "scene",
                "seed": pc.seed,
                "split": split,
                "index": i,
                "objects": pc.objects_per_scene,
                "surface_points": surface,
                "modelnet": str(Path(modelnet).resolve()) if modelnet else None,
            }

            def make(i=i):
                rng = seeded_rng(pc.seed, split, i)
                return pretraining_scene(rng, surface, objects=pc.objects_per_scene, modelnet_dir=modelnet)

        if i % env.world == env.rank:
            cached_cloud(cache_dir, settings, make, model.n, model.k, model.sampler)
        paths.append(cache_path(cache_dir, settings, model.n, model.k, model.sampler))
    dist_utils.barrier(env)
    return CloudSet(paths)


def scene_kind(kind: str, index: int) -> str:
    """``depth`` or ``surface``: the kind of scene ``index`` of a split of ``kind`` scenes
    (``mixed``: even indices are depth scenes)."""
    return "depth" if kind == "depth" or (kind == "mixed" and index % 2 == 0) else "surface"


def kind_scales(pairs: list[tuple[float, int]], kind: str) -> dict[str, float]:
    """s (eq. 4) of each scene kind present in a split, over that kind's scenes only, from the
    split's ``CloudSet.scale_pairs()`` (scene i's distance sum and count at position i)."""
    from st3d_edge.geometry.scale import scale_s

    groups: dict[str, list[tuple[float, int]]] = {}
    for i, pair in enumerate(pairs):
        groups.setdefault(scene_kind(kind, i), []).append(pair)
    return {name: scale_s(group) for name, group in groups.items()}


class ReceptiveFieldLoss:
    """Chamfer(D(f_p), R(p) - mean) averaged over chosen points p of one cloud."""

    def __init__(self, hops: int, device: str) -> None:
        self.hops, self.device = hops, device

    def __call__(self, teacher: Any, decoder: Any, points: Any, knn: Any, knn_np, chosen) -> Any:
        import torch

        from st3d_edge.geometry.receptive_field import receptive_field
        from st3d_edge.model.chamfer import chamfer_distance

        features = teacher(points, knn)
        decoded = decoder(features[torch.as_tensor(chosen, device=points.device)])
        losses = []
        for row, p in enumerate(chosen):
            field = torch.as_tensor(receptive_field(knn_np, int(p), self.hops), device=points.device)
            region = points[field]
            losses.append(chamfer_distance(decoded[row], region - region.mean(dim=0, keepdim=True)))
        return torch.stack(losses).mean()


def pretrain(
    run_dir: str | Path,
    preset: Preset,
    *,
    modelnet: str | Path | None = None,
    env: dist_utils.Dist | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> PretrainResult:
    """Pretrain a teacher in ``run_dir`` (see the module docstring for the procedure)."""
    import torch

    from st3d_edge.model.decoder import Decoder

    env = env or dist_utils.Dist()
    run_dir = Path(run_dir)
    config = run_config(preset, kind="teacher", modelnet=str(modelnet) if modelnet else None)
    config, preset = open_run(run_dir, config, env, resume=resume, overwrite=overwrite)
    pc, model = preset.pretrain, preset.model
    modelnet = config.get("job", {}).get("modelnet")  # on resume: the folder the run started with

    cache_dir = run_dir / CACHE
    train = scene_cache(cache_dir, preset, SPLIT_TRAIN, pc.scenes_train, modelnet, env, progress)
    val = scene_cache(cache_dir, preset, SPLIT_VAL, pc.scenes_val, modelnet, env, progress)
    from st3d_edge.geometry.scale import scale_s

    train_pairs = train.scale_pairs()  # each cache entry read once for both scales below
    s = scale_s(train_pairs)
    # a kind the training split lacks (one training scene) takes its s from the validation split
    s_by_kind = {**kind_scales(val.scale_pairs(), pc.scenes), **kind_scales(train_pairs, pc.scenes)}
    if env.is_main:
        write_json_atomic(
            run_dir / SCALE,
            {"s": s, "s_by_kind": s_by_kind, "clouds": len(train), "n": model.n, "k": model.k},
        )

    def scene_s(index: int) -> float:
        return s_by_kind[scene_kind(pc.scenes, index)]

    device = env.device
    teacher = build_net(model, seed=pc.seed).to(device)
    decoder = _decoder(Decoder, model, pc.seed).to(device)
    optimizer = torch.optim.Adam(
        list(teacher.parameters()) + list(decoder.parameters()), lr=pc.lr, weight_decay=pc.weight_decay
    )
    rf_loss = ReceptiveFieldLoss(model.lfa_layers, device)

    def loss_fn(epoch: int, index: int):
        cloud = train[index]
        points, knn = cloud_tensors(cloud, scene_s(index), device)
        rng = seeded_rng(pc.seed, TRAIN_POINTS_STREAM, epoch, index)
        chosen = _choose(len(cloud.points), pc.samples_per_step, rng)
        return rf_loss(teacher, decoder, points, knn, cloud.knn, chosen)

    def val_fn() -> float:
        total = 0.0
        with torch.no_grad():
            for j in range(env.rank, len(val), env.world):
                cloud = val[j]
                points, knn = cloud_tensors(cloud, scene_s(j), device)
                rng = seeded_rng(pc.seed, VAL_POINTS_STREAM, j)
                chosen = _choose(len(cloud.points), pc.samples_per_step, rng)
                total += float(rf_loss(teacher, decoder, points, knn, cloud.knn, chosen))
        summed, count = dist_utils.all_sum([total, len(range(env.rank, len(val), env.world))], env)
        return summed / max(count, 1)

    def save_best(epoch: int, val_loss: float) -> None:
        save_checkpoint(
            run_dir / TEACHER,
            {
                "model": teacher.state_dict(),
                "decoder": decoder.state_dict(),
                "epoch": epoch,
                "val_loss": val_loss,
                "model_config": to_dict(model),
                "s": s,
            },
        )

    loop = Loop(
        run_dir=run_dir,
        modules={"teacher": teacher, "decoder": decoder},
        optimizer=optimizer,
        epochs=pc.epochs,
        train_count=len(train),
        seed=pc.seed,
        loss_fn=loss_fn,
        val_fn=val_fn,
        save_best=save_best,
        env=env,
        label="pretrain",
        progress=progress,
        cosine_lr=pc.cosine_lr,
    )
    summary = run_loop(loop, resume=resume)
    rank = None
    if env.is_main:
        rank = best_teacher_rank(run_dir / TEACHER, teacher, val, scene_s, device)
        write_json_atomic(run_dir / DIAGNOSTICS, {"effective_rank": rank, "clouds": len(val), "d": model.d})
    return PretrainResult(
        run_dir, s, summary["best_val"], summary["best_epoch"], summary["metrics"], effective_rank=rank
    )


def best_teacher_rank(checkpoint: Path, teacher: Any, clouds: CloudSet, scene_s, device: str) -> float:
    """Effective rank (:mod:`st3d_edge.evaluation.feature_rank`) of the best teacher's features
    over ``clouds``; ``teacher`` is the run's network, whose weights are replaced by the best."""
    import numpy as np
    import torch

    from st3d_edge.evaluation.feature_rank import effective_rank
    from st3d_edge.train.checkpoint import load_checkpoint

    teacher.load_state_dict(load_checkpoint(checkpoint)["model"])
    teacher.eval()
    features = []
    with torch.no_grad():
        for j in range(len(clouds)):
            points, knn = cloud_tensors(clouds[j], scene_s(j), device)
            # every few points, so the paper preset's 50 x 64000 points stay a few MB
            stride = max(1, len(points) // RANK_POINTS_PER_CLOUD)
            features.append(teacher(points, knn)[::stride].cpu().numpy())
    return effective_rank(np.concatenate(features))


def _decoder(decoder_cls: Any, model, seed: int) -> Any:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return decoder_cls(model.d, m=model.decoder_points)


def _choose(count: int, wanted: int, rng) -> list[int]:
    return sorted(rng.choice(count, size=min(wanted, count), replace=False).tolist())
