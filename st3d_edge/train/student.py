"""Student training for one category (paper 3.2 and 4.1), statistics and thresholds.

Decisions the paper leaves open, as taken here:

- Training clouds: every scan of ``<data>/<category>/train`` (all valid pixels, no background
  removal, matching the runtime's default), reduced to n points by the configured sampler and
  given a kNN graph once (``cache/``). Validation: the good scans of ``validation``. Instead of
  the MVTec layout the caller may list the training and validation scans itself, in any format
  of ``st3d_edge.data.readers`` (``st3d_edge.train.api`` does, for a flat folder of good scans).
- s (eq. 4) over the training clouds as sampled; mu and sigma of the teacher's features over
  the same clouds, streamed in float64 (``calibration.stats.RunningMoments``); sigma is the
  population standard deviation. Saved in ``stats/``.
- The teacher's normalised features (f_T - mu) / sigma of a cloud are computed once and kept
  (the teacher is frozen), so a step costs one student forward and backward.
- Loss (eq. 5): mean over the cloud's points of ||f_S - (f_T - mu) / sigma||^2; batch 1;
  Adam with L2 weight decay (lr 1e-3, weight decay 1e-5). The student's initial weights are
  drawn from ``seed``; the random-teacher ablation's teacher from ``seed + 7919``.
- Validation loss: the same loss averaged over the validation clouds; ``student.pt`` keeps the
  student with the lowest one. ``teacher.pt`` is a copy of the teacher used.
- Thresholds (``thresholds.json``, see ``calibration.thresholds``): the anomaly scores (eq. 6,
  ``model.scorer.Scorer``, as evaluation and export score) of the best student on the sampled
  points of the validation scans give the pixel threshold (default false-positive rate 0.01)
  and their image scores (``geometry.smoothing.image_score``) the image threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from st3d_edge.calibration.stats import RunningMoments, save_stats
from st3d_edge.calibration.thresholds import (
    DEFAULT_PIXEL_FPR,
    Thresholds,
    image_threshold,
    pixel_threshold,
    save_thresholds,
)
from st3d_edge.config import Preset, student_epochs, to_dict
from st3d_edge.data.readers import ReadOptions
from st3d_edge.errors import file_error
from st3d_edge.teachers import MATCH_FIELDS
from st3d_edge.train import distributed as dist_utils
from st3d_edge.train.cache import CloudSet, cache_path, cached_cloud, caching, file_identity
from st3d_edge.train.checkpoint import load_checkpoint, require_keys, save_checkpoint
from st3d_edge.train.common import RANDOM_TEACHER_STREAM, build_net, cloud_tensors
from st3d_edge.train.loop import Loop, run_loop
from st3d_edge.train.runfolder import CACHE, open_run, read_config, run_config

STUDENT = "student.pt"
TEACHER = "teacher.pt"
STATS = "stats"
THRESHOLDS = "thresholds.json"
# settings that fix the teacher's weights and meaning; a student must use the teacher's values
TEACHER_FIELDS = MATCH_FIELDS


@dataclass
class StudentResult:
    run_dir: Path
    s: float
    best_val: float
    best_epoch: int
    metrics: list[dict]
    thresholds: Thresholds | None


def scan_cache(
    cache_dir: Path,
    paths: list[Path],
    preset: Preset,
    env: dist_utils.Dist,
    reading: ReadOptions = ReadOptions(),
    progress: bool = False,
) -> CloudSet:
    """Sample and cache every scan (each rank its share), then list them all."""
    model = preset.model
    out = []
    for i, path in caching(list(enumerate(paths)), f"cache scans ({len(paths)})", progress and env.is_main):
        # default read options add nothing: caches written before they existed stay valid
        settings = {"kind": "scan", **file_identity(path), **reading.key()}
        if i % env.world == env.rank:
            cached_cloud(
                cache_dir,
                settings,
                lambda p=path: reading.points(p),
                model.n,
                model.k,
                model.sampler,
            )
        out.append(cache_path(cache_dir, settings, model.n, model.k, model.sampler))
    dist_utils.barrier(env)
    return CloudSet(out)


def load_teacher(teacher_dir: Path, preset: Preset) -> tuple[Any, dict]:
    """The pretrained teacher of ``teacher_dir``, checked against the student's model settings."""
    teacher_dir = Path(teacher_dir)
    path = teacher_dir / TEACHER
    if not path.is_file():
        raise file_error(
            teacher_dir,
            "no pretrained teacher here (teacher.pt missing); run `st3d-edge pretrain` with the same "
            "preset, or train with --preset cpu, whose teacher ships with the package",
        )
    teacher_model = read_config(teacher_dir)["model"]
    for name in TEACHER_FIELDS:
        mine = getattr(preset.model, name)
        if teacher_model.get(name) != mine:
            raise file_error(
                teacher_dir / "config.json",
                f"teacher was pretrained with {name}={teacher_model.get(name)}, this run asks for {mine}; "
                "pretrain a matching teacher or pick the same preset",
            )
    state = load_checkpoint(path)
    require_keys(path, state, ("model",))
    teacher = build_net(preset.model)
    teacher.load_state_dict(state["model"])
    return teacher, {"source": str(teacher_dir.resolve()), "epoch": state.get("epoch")}


def teacher_moments(teacher: Any, clouds: CloudSet, s: float, d: int, env: dist_utils.Dist) -> RunningMoments:
    """Per-channel moments of the teacher's features over all clouds, merged over the ranks."""
    import torch

    local = RunningMoments(d)
    with torch.no_grad():
        for i in range(env.rank, len(clouds), env.world):
            points, knn = cloud_tensors(clouds[i], s, env.device)
            local.update(teacher(points, knn).double().cpu().numpy())
    if not env.active:
        return local
    # exact merge of the ranks' (count, mean, M2): global mean first, then the deviations
    count, mean, m2 = local.state()
    total = dist_utils.all_sum(np.concatenate([[count], mean * count]), env)
    n_all, mean_all = total[0], total[1:] / total[0]
    m2_all = dist_utils.all_sum(m2 + count * (mean - mean_all) ** 2, env)
    return RunningMoments.from_state(int(n_all), mean_all, m2_all)


class Targets:
    """(f_T - mu) / sigma of each cloud, computed once (the teacher never changes)."""

    def __init__(self, teacher, clouds: CloudSet, s: float, mu, sigma, device: str, budget: int = 1 << 30):
        import torch

        self.teacher, self.clouds, self.s, self.device = teacher, clouds, s, device
        self.mu = torch.as_tensor(np.asarray(mu, dtype=np.float32), device=device)
        self.sigma = torch.as_tensor(np.asarray(sigma, dtype=np.float32), device=device)
        self.budget, self.used, self.memo = budget, 0, {}

    def __call__(self, i: int):
        import torch

        hit = self.memo.get(i)
        if hit is not None:
            return hit
        points, knn = cloud_tensors(self.clouds[i], self.s, self.device)
        with torch.no_grad():
            target = (self.teacher(points, knn) - self.mu) / self.sigma
        size = target.numel() * target.element_size()
        if self.used + size <= self.budget:
            self.memo[i] = target
            self.used += size
        return target


def student_loss(student: Any, points: Any, knn: Any, target: Any) -> Any:
    """Eq. (5): mean over points of the squared distance to the normalised teacher features."""
    return ((student(points, knn) - target) ** 2).sum(dim=1).mean()


def train_category(
    run_dir: str | Path,
    preset: Preset,
    *,
    data_root: str | Path | None = None,
    category: str,
    teacher_dir: str | Path | None = None,
    train_paths: list[Path] | None = None,
    val_paths: list[Path] | None = None,
    reading: ReadOptions = ReadOptions(),
    source: dict | None = None,
    env: dist_utils.Dist | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    pixel_fpr: float = DEFAULT_PIXEL_FPR,
) -> StudentResult:
    """Train the student of ``category`` in ``run_dir`` (see the module docstring).

    The scans are ``<data_root>/<category>/{train,validation}``'s good ones, or ``train_paths``
    and ``val_paths`` when given (``source`` then describes them in the run's config).
    """
    import torch

    env = env or dist_utils.Dist()
    run_dir = Path(run_dir)
    if train_paths is None or val_paths is None:
        train_paths, val_paths = _mvtec_good_scans(Path(data_root), category)
        source = {"data": str(Path(data_root).resolve())}
    random_teacher = preset.student.random_teacher
    if not random_teacher and teacher_dir is None:
        raise file_error(
            run_dir, "no teacher folder given (pretrain one, or use the random-teacher ablation)"
        )
    config = run_config(
        preset,
        kind="category",
        category=category,
        teacher=None if random_teacher else str(Path(teacher_dir).resolve()),
        **(source or {}),
        **reading.key(),
    )
    checked_teacher = None
    if not resume:
        # what the job needs is checked before open_run replaces an old run (--overwrite)
        reading.points(train_paths[0])
        reading.points(val_paths[0])
        if not random_teacher:
            checked_teacher = load_teacher(Path(teacher_dir), preset)
    config, preset = open_run(run_dir, config, env, resume=resume, overwrite=overwrite)
    model, sc = preset.model, preset.student
    device = env.device

    if sc.random_teacher:
        teacher = build_net(model, seed=sc.seed + RANDOM_TEACHER_STREAM)
        teacher_info = {"source": "random", "seed": sc.seed + RANDOM_TEACHER_STREAM}
    else:
        teacher, teacher_info = checked_teacher or load_teacher(Path(config["job"]["teacher"]), preset)
    teacher = teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    cache_dir = run_dir / CACHE
    train = scan_cache(cache_dir, train_paths, preset, env, reading, progress)
    val = scan_cache(cache_dir, val_paths, preset, env, reading, progress)
    s = train.scale()
    moments = teacher_moments(teacher, train, s, model.d, env)
    mu, sigma = moments.mean.astype(np.float32), moments.std.astype(np.float32)
    if env.is_main:
        save_stats(run_dir / STATS, s, mu, sigma, clouds=len(train), points=moments.count)
        save_checkpoint(run_dir / TEACHER, {"model": teacher.state_dict(), **_plain(teacher_info)})

    train_targets = Targets(teacher, train, s, mu, sigma, device)
    val_targets = Targets(teacher, val, s, mu, sigma, device)
    student = build_net(model, seed=sc.seed).to(device)
    optimizer = torch.optim.Adam(student.parameters(), lr=sc.lr, weight_decay=sc.weight_decay)

    def loss_fn(epoch: int, index: int):
        points, knn = cloud_tensors(train[index], s, device)
        return student_loss(student, points, knn, train_targets(index))

    def val_fn() -> float:
        total, mine = 0.0, range(env.rank, len(val), env.world)
        with torch.no_grad():
            for j in mine:
                points, knn = cloud_tensors(val[j], s, device)
                total += float(student_loss(student, points, knn, val_targets(j)))
        summed, count = dist_utils.all_sum([total, len(mine)], env)
        return summed / max(count, 1)

    def save_best(epoch: int, val_loss: float) -> None:
        save_checkpoint(
            run_dir / STUDENT,
            {
                "model": student.state_dict(),
                "epoch": epoch,
                "val_loss": val_loss,
                "model_config": to_dict(model),
            },
        )

    loop = Loop(
        run_dir=run_dir,
        modules={"student": student},
        optimizer=optimizer,
        epochs=student_epochs(sc, len(train)),
        train_count=len(train),
        seed=sc.seed,
        loss_fn=loss_fn,
        val_fn=val_fn,
        save_best=save_best,
        env=env,
        label=f"train {category}",
        progress=progress,
        cosine_lr=sc.cosine_lr,
    )
    summary = run_loop(loop, resume=resume)
    thresholds = None
    if env.is_main:
        student.load_state_dict(load_checkpoint(run_dir / STUDENT)["model"])
        from st3d_edge.model.scorer import Scorer

        scorer = Scorer(teacher, student.eval(), s, mu, sigma).to(device).eval()
        val_student = [student_scores(scorer, val[i], device) for i in range(len(val))]
        val_scores = fit_scoring(run_dir, model.scoring, train, val, val_student, s, progress)
        from st3d_edge.calibration.scoring import IMAGE_NEIGHBOURS

        thresholds = calibrate_thresholds(val, val_scores, pixel_fpr, IMAGE_NEIGHBOURS[model.scoring])
        save_thresholds(run_dir / THRESHOLDS, thresholds)
    dist_utils.barrier(env)
    return StudentResult(
        run_dir, s, summary["best_val"], summary["best_epoch"], summary["metrics"], thresholds
    )


def _mvtec_good_scans(data_root: Path, category: str) -> tuple[list[Path], list[Path]]:
    """The good scans of the train and validation splits (training and thresholds assume no defects)."""
    from st3d_edge.data.mvtec import good_scan_paths

    train_paths = good_scan_paths(data_root, category, "train")
    val_paths = good_scan_paths(data_root, category, "validation")
    if not train_paths:
        raise file_error(data_root / category / "train", "no good training scans found (good/xyz/*.tiff)")
    if not val_paths:
        raise file_error(
            data_root / category / "validation",
            "no good validation scans found (needed for the best checkpoint and the thresholds)",
        )
    return train_paths, val_paths


def student_scores(scorer, cloud, device: str) -> np.ndarray:
    """The student's error (eq. 6) on one cached cloud."""
    import torch

    with torch.no_grad():
        points = torch.from_numpy(np.ascontiguousarray(cloud.points, dtype=np.float32)).to(device)
        knn = torch.from_numpy(cloud.knn.astype(np.int64)).to(device)
        return scorer(points, knn).cpu().numpy()


def fit_scoring(
    run_dir: Path,
    method: str,
    train: CloudSet,
    val: CloudSet,
    val_student: list[np.ndarray],
    s: float,
    progress: bool,
) -> list[np.ndarray]:
    """The category's scoring, and with it the anomaly scores of the validation clouds.

    ``val_student`` holds the student's errors on the validation clouds. For ``fused``: the
    geometric bank of the training clouds and the fusion's standardisation from the validation
    clouds, saved in ``geometric/``; the returned scores are the fused ones.
    """
    from st3d_edge.calibration.fusion import fit_fusion
    from st3d_edge.calibration.geometric import GeometricScore, GeometricSettings
    from st3d_edge.calibration.scoring import save_scoring

    if method == "student":
        return val_student
    clouds = (train[i].points for i in range(len(train)))
    if progress:
        from st3d_edge.console import track

        clouds = track(clouds, "geometric bank", total=len(train))
    geometric = GeometricScore.fit(clouds, GeometricSettings(s=float(s)))
    val_geometric = [geometric(val[i].points) for i in range(len(val))]
    fusion = fit_fusion(np.concatenate(val_student), np.concatenate(val_geometric))
    save_scoring(run_dir, geometric, fusion)
    return [fusion(st, geo) for st, geo in zip(val_student, val_geometric, strict=True)]


def calibrate_thresholds(
    clouds: CloudSet, point_scores: list[np.ndarray], pixel_fpr: float, image_neighbours: int
) -> Thresholds:
    """Pixel and image thresholds from the anomaly scores of good validation clouds.

    ``point_scores`` are the scores of each cloud's points as evaluation and export score them
    (the run's scoring applied to ``model.scorer.Scorer``'s output); ``image_neighbours`` the
    scoring's image-score neighbour count.
    """
    from st3d_edge.geometry.smoothing import image_score

    image_scores = [
        image_score(clouds[i].points, scores, clouds[i].knn, neighbours=image_neighbours)
        for i, scores in enumerate(point_scores)
    ]
    good = np.concatenate(point_scores)
    return Thresholds(
        pixel=pixel_threshold(good, pixel_fpr),
        image=image_threshold(image_scores),
        pixel_fpr=pixel_fpr,
        validation_scans=len(clouds),
        validation_points=int(good.size),
        image_neighbours=image_neighbours,
    )


def _plain(info: dict) -> dict:
    return {k: v for k, v in info.items() if v is not None}
