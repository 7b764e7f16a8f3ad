"""The export bundle: a folder the edge runtime can trust, and its ``manifest.json``.

A bundle holds

``model.onnx``       the FP32 scorer graph (always present; the reference for parity checks)
``model_fp16.onnx``  the FP16 scorer graph, when the export asked for ``--precision fp16``
``model.engine``     a serialized TensorRT engine built from the graph of the bundle's
                     precision, when the export built one (``--format engine|all``)
``timing.cache``     TensorRT's timing cache, kept so a rebuild on the same device is fast
``manifest.json``    what the runtime needs besides the weights, and a checksum of every file

Decisions the paper leaves open, recorded here:

- One engine per bundle, built from the graph of ``precision``; both ONNX graphs may be kept
  so a CPU fallback (onnxruntime) always has the FP32 reference.
- The manifest copies the category's ``thresholds.json`` content under ``thresholds``
  unchanged, so the runtime reads the same numbers the calibration wrote.
- An engine is only usable by the TensorRT version that built it, on the GPU model it was
  built for (TensorRT engines are neither version- nor device-portable by default). Loading a
  bundle for engine use compares the exact TensorRT version string and the GPU name and
  compute capability; any difference is refused with "export again on this device".
- A newer ``format_version`` than this package knows is refused; older ones load.

This module never imports torch, onnx or tensorrt at import time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from st3d_edge.errors import MissingExtraError, St3dError, file_error, gpu_extra, missing_tensorrt
from st3d_edge.io_utils import write_json_atomic

# 2: the manifest's ``scoring`` (the fused score's bank and standardisation); a runtime that
# ignored it would compare student errors with thresholds calibrated on fused scores
FORMAT_VERSION = 2
GEOMETRIC_BANK_NAME = "geometric_bank.npy"
MANIFEST_NAME = "manifest.json"
ONNX_NAMES = {"fp32": "model.onnx", "fp16": "model_fp16.onnx"}
ENGINE_NAME = "model.engine"
TIMING_CACHE_NAME = "timing.cache"
PRECISIONS = ("fp32", "fp16")
INPUT_NAMES = ("points", "knn")
OUTPUT_NAME = "scores"
DEBUG_OUTPUT_NAMES = ("student_features", "teacher_features_normalized")

_REEXPORT = "export again with `st3d-edge export` on this device"
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    """A file of the bundle as the exporter wrote it."""

    sha256: str
    size: int


@dataclass(frozen=True)
class DeviceIdentity:
    """What an engine is tied to: the TensorRT that built it and the GPU it was built on."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "major.minor", e.g. "8.7" for Jetson Orin


@dataclass(frozen=True)
class EngineInfo:
    """The serialized TensorRT engine of a bundle and what it was built for."""

    file: str
    precision: str
    device: DeviceIdentity
    profile_min: int
    profile_opt: int
    profile_max: int
    workspace_bytes: int
    timing_cache: str | None = TIMING_CACHE_NAME


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its folder and the manifest's content."""

    path: Path
    format_version: int
    category: str
    n: int
    k: int
    d: int
    s: float
    sampler: str
    precision: str
    models: dict[str, str]  # precision -> ONNX file name
    thresholds: dict[str, Any]
    image_score: dict[str, Any]
    versions: dict[str, str]
    files: dict[str, FileEntry]
    engine: EngineInfo | None = None
    parity: dict[str, Any] = field(default_factory=dict)
    # {"method": "student"} or {"method": "fused", "fusion": {...}, "geometric": {...}, "bank": file}
    scoring: dict[str, Any] = field(default_factory=lambda: {"method": "student"})

    def onnx_path(self, precision: str | None = None) -> Path:
        """The ONNX graph for ``precision`` (default: the bundle's precision)."""
        precision = precision or self.precision
        if precision not in self.models:
            have = ", ".join(sorted(self.models))
            raise file_error(
                self.path, f"has no {precision} ONNX graph (it has: {have}); {_export_hint(precision)}"
            )
        return self.path / self.models[precision]

    @property
    def engine_path(self) -> Path | None:
        return self.path / self.engine.file if self.engine else None


def _export_hint(precision: str) -> str:
    return f"export again with `st3d-edge export --precision {precision}`"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_files(folder: Path) -> dict[str, FileEntry]:
    """Checksums and sizes of every plain file in ``folder`` except the manifest."""
    entries = {}
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.name != MANIFEST_NAME:
            entries[path.name] = FileEntry(sha256_file(path), path.stat().st_size)
    return entries


def write_manifest(
    folder: str | Path,
    *,
    category: str,
    n: int,
    k: int,
    d: int,
    s: float,
    sampler: str,
    precision: str,
    models: dict[str, str],
    thresholds: dict[str, Any],
    image_score: dict[str, Any],
    versions: dict[str, str],
    engine: EngineInfo | None = None,
    parity: dict[str, Any] | None = None,
    scoring: dict[str, Any] | None = None,
) -> Bundle:
    """Checksum every file already in ``folder`` and write ``manifest.json`` beside them.

    Call it last, once the graphs (and the engine) are in the folder; the exporter writes the
    folder under a temporary name (``io_utils.atomic_dir``), so the manifest's checksums always
    describe the files of the finished bundle.
    """
    folder = Path(folder)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision not in models:
        raise ValueError(f"no ONNX graph listed for the bundle's precision {precision!r}")
    files = describe_files(folder)
    scoring = dict(scoring or {"method": "student"})
    named = list(models.values()) + ([engine.file] if engine else [])
    if scoring.get("bank"):
        named.append(scoring["bank"])
    if engine and engine.timing_cache:
        named.append(engine.timing_cache)
    missing = [name for name in named if name not in files]
    if missing:
        raise ValueError(f"{folder}: the manifest names files that are not there: {', '.join(missing)}")
    bundle = Bundle(
        path=folder,
        format_version=FORMAT_VERSION,
        category=category,
        n=int(n),
        k=int(k),
        d=int(d),
        s=float(s),
        sampler=sampler,
        precision=precision,
        models=dict(models),
        thresholds=dict(thresholds),
        image_score=dict(image_score),
        versions={key: str(value) for key, value in versions.items()},
        files=files,
        engine=engine,
        parity=dict(parity or {}),
        scoring=scoring,
    )
    write_json_atomic(folder / MANIFEST_NAME, manifest_dict(bundle))
    return bundle


def manifest_dict(bundle: Bundle) -> dict[str, Any]:
    data = asdict(bundle)
    del data["path"]
    return data


def load_bundle(
    path: str | Path,
    *,
    use_engine: bool = False,
    device: DeviceIdentity | None = None,
    verify_checksums: bool = True,
) -> Bundle:
    """Read and verify a bundle; refuse one the runtime cannot trust, saying what to do.

    ``use_engine=True`` also checks that the bundle has an engine and that it was built by
    this TensorRT on this GPU (``device``; detected with :func:`current_device` when None).
    """
    path = Path(path)
    if not path.is_dir():
        raise file_error(path, "bundle folder not found; export one with `st3d-edge export`")
    manifest_path = path / MANIFEST_NAME
    try:
        data = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise file_error(manifest_path, f"missing: not a complete bundle; {_REEXPORT}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise file_error(manifest_path, f"not valid JSON ({exc}); {_REEXPORT}") from None
    bundle = _bundle_from_dict(path, data, manifest_path)
    for name, entry in bundle.files.items():
        _verify_file(path / name, entry, verify_checksums)
    named = list(bundle.models.values()) + ([bundle.engine.file] if bundle.engine else [])
    if bundle.scoring.get("bank"):
        named.append(str(bundle.scoring["bank"]))
    for name in named:
        if name not in bundle.files:
            raise file_error(manifest_path, f"names {name} without a checksum for it; {_REEXPORT}")
    if use_engine:
        check_engine_device(bundle, device if device is not None else current_device())
    return bundle


def _bundle_from_dict(path: Path, data: Any, manifest_path: Path) -> Bundle:
    if not isinstance(data, dict):
        raise file_error(manifest_path, f"not a bundle manifest; {_REEXPORT}")
    version = data.get("format_version")
    if not isinstance(version, int):
        raise file_error(manifest_path, f"has no format_version; not a bundle manifest; {_REEXPORT}")
    if version > FORMAT_VERSION:
        raise file_error(
            manifest_path,
            f"bundle format {version} is newer than this st3d-edge reads ({FORMAT_VERSION}); "
            f"upgrade st3d-edge on this device or {_REEXPORT} with the installed version",
        )
    try:
        engine = data.get("engine")
        if engine is not None:
            engine = EngineInfo(**{**engine, "device": DeviceIdentity(**engine["device"])})
        return Bundle(
            path=path,
            format_version=version,
            category=str(data["category"]),
            n=int(data["n"]),
            k=int(data["k"]),
            d=int(data["d"]),
            s=float(data["s"]),
            sampler=str(data["sampler"]),
            precision=str(data["precision"]),
            models={str(p): str(f) for p, f in data["models"].items()},
            thresholds=dict(data["thresholds"]),
            image_score=dict(data["image_score"]),
            versions=dict(data["versions"]),
            files={name: FileEntry(**entry) for name, entry in data["files"].items()},
            engine=engine,
            parity=dict(data.get("parity") or {}),
            scoring=dict(data.get("scoring") or {"method": "student"}),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise file_error(manifest_path, f"incomplete or malformed manifest ({exc!r}); {_REEXPORT}") from None


def bundle_scoring(bundle: Bundle):
    """The bundle's :class:`~st3d_edge.calibration.scoring.Scoring`, or one line naming the bad field."""
    from st3d_edge.calibration.fusion import Fusion
    from st3d_edge.calibration.geometric import GeometricScore, GeometricSettings, load_bank
    from st3d_edge.calibration.scoring import STUDENT_ONLY, Scoring

    where = bundle.path / MANIFEST_NAME
    scoring = bundle.scoring
    method = scoring.get("method")
    if method == "student":
        return STUDENT_ONLY
    if method != "fused":
        raise file_error(where, f"scoring.method must be 'student' or 'fused', not {method!r}; {_REEXPORT}")
    try:
        fusion = Fusion.from_dict(scoring["fusion"])
        settings = GeometricSettings(**scoring["geometric"])
    except (KeyError, TypeError, ValueError) as exc:
        raise file_error(where, f"malformed scoring settings ({exc}); {_REEXPORT}") from None
    settings.check(where)
    return Scoring("fused", GeometricScore(settings, load_bank(bundle.path / str(scoring["bank"]))), fusion)


def _verify_file(path: Path, entry: FileEntry, verify_checksum: bool) -> None:
    if not path.is_file():
        raise file_error(path, f"missing from the bundle; {_REEXPORT}")
    size = path.stat().st_size
    if size != entry.size:
        raise file_error(path, f"has {size} bytes, the manifest says {entry.size}; {_REEXPORT}")
    if verify_checksum and sha256_file(path) != entry.sha256:
        raise file_error(path, f"checksum does not match the manifest (corrupt or changed); {_REEXPORT}")


def check_engine_device(bundle: Bundle, device: DeviceIdentity) -> None:
    """Refuse an engine built by another TensorRT or for another GPU than ``device``."""
    if bundle.engine is None:
        raise file_error(
            bundle.path, "has no TensorRT engine; export one with `st3d-edge export --format engine`"
        )
    built = bundle.engine.device
    engine_path = bundle.path / bundle.engine.file
    if built.tensorrt_version != device.tensorrt_version:
        raise file_error(
            engine_path,
            f"built by TensorRT {built.tensorrt_version}, this device has {device.tensorrt_version}; "
            f"{_REEXPORT}",
        )
    if (built.gpu_name, built.compute_capability) != (device.gpu_name, device.compute_capability):
        raise file_error(
            engine_path,
            f"built for {built.gpu_name} (sm {built.compute_capability}), this device has "
            f"{device.gpu_name} (sm {device.compute_capability}); {_REEXPORT}",
        )


def current_device() -> DeviceIdentity:
    """This machine's TensorRT version and first CUDA GPU (imports tensorrt and numba.cuda)."""
    try:
        import tensorrt
    except ImportError:
        raise missing_tensorrt("needed to use a TensorRT engine") from None
    name, capability = current_gpu()
    return DeviceIdentity(str(tensorrt.__version__), name, capability)


def current_gpu() -> tuple[str, str]:
    """(name, "major.minor" compute capability) of the current CUDA GPU, via numba.cuda."""
    try:
        from numba import cuda
    except ImportError:
        raise MissingExtraError("numba-cuda", gpu_extra(), "needed to identify the GPU") from None
    try:
        if not cuda.is_available():
            raise St3dError("no CUDA GPU found: a TensorRT engine needs one (use the onnxruntime backend)")
        gpu = cuda.get_current_device()
    except St3dError:
        raise
    except Exception as exc:  # the CUDA driver reports its problems as many exception types
        raise St3dError(f"cannot open the CUDA GPU ({exc})") from None
    name = gpu.name.decode() if isinstance(gpu.name, bytes) else str(gpu.name)
    major, minor = gpu.compute_capability
    return name, f"{major}.{minor}"
