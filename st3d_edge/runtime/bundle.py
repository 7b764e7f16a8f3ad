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
- A newer ``format_version`` than this package knows is refused; so is format 1, which had no
  manifest checksum (export it again).
- Trust (see docs/RELIABILITY.md): every file name in the manifest is a plain name inside the
  bundle, and one that resolves elsewhere (``..``, an absolute path, a symlink out) is refused
  before the file is opened. The manifest carries ``manifest_sha256``, the sha256 of its
  canonical JSON (:func:`st3d_edge.runtime.signing.canonical_json`), so a hand-edited threshold
  is refused; ``signatures`` optionally holds Ed25519 signatures over the same bytes. Fields
  are checked when the bundle loads (:mod:`st3d_edge.runtime.manifest_checks`).
- Whatever changes a manifest after export (an engine built on the device, thresholds from
  recalibration) goes through :func:`rewrite_manifest`, which re-checksums the files and the
  manifest and re-signs it with the key it is given (the device's own key, which the device
  trusts beside the exporter's); the exporter's signature no longer covers the new content.

This module never imports torch, onnx or tensorrt at import time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from st3d_edge.errors import MissingExtraError, St3dError, file_error, gpu_extra, missing_tensorrt
from st3d_edge.io_utils import write_json_atomic
from st3d_edge.runtime.manifest_checks import PRECISIONS, first_problem, is_int, unsafe_name

# 2: a checksummed manifest (format 1 had none) with ``scoring`` (the fused score's bank and
# standardisation: a runtime that ignored it would compare student errors with thresholds
# calibrated on fused scores)
FORMAT_VERSION = 2
MIN_FORMAT_VERSION = 2
GEOMETRIC_BANK_NAME = "geometric_bank.npy"
MANIFEST_NAME = "manifest.json"
ONNX_NAMES = {"fp32": "model.onnx", "fp16": "model_fp16.onnx"}
ENGINE_NAME = "model.engine"
TIMING_CACHE_NAME = "timing.cache"
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
    manifest_sha256: str = ""  # the bundle's identity: results record it as bundle_id
    signatures: list[dict[str, str]] = field(default_factory=list)

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
    """Checksums and sizes of every plain file in ``folder`` except the manifest (no symlinks)."""
    entries = {}
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and not path.is_symlink() and path.name != MANIFEST_NAME:
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
    signing_key: str | Path | None = None,
) -> Bundle:
    """Checksum every file already in ``folder`` and write ``manifest.json`` beside them.

    Call it last, once the graphs (and the engine) are in the folder; the exporter writes the
    folder under a temporary name (``io_utils.atomic_dir``), so the manifest's checksums always
    describe the files of the finished bundle. ``signing_key``: an Ed25519 private key (PEM)
    to sign the manifest with.
    """
    folder = Path(folder)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision not in models:
        raise ValueError(f"no ONNX graph listed for the bundle's precision {precision!r}")
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
        files={},
        engine=engine,
        parity=dict(parity or {}),
        scoring=dict(scoring or {"method": "student"}),
    )
    return _store(bundle, signing_key)


def rewrite_manifest(
    bundle: Bundle,
    *,
    signing_key: str | Path | None = None,
    drop_signatures: bool = False,
    **changes: Any,
) -> Bundle:
    """Write ``bundle``'s manifest again with ``changes`` (Bundle field names), and return it.

    For whatever changes a bundle after export: ``thresholds=...`` from a recalibration,
    ``engine=EngineInfo(...)`` once an engine has been built into the folder. The files are
    checksummed again, the fields checked, the manifest checksummed and, with ``signing_key``,
    signed by that key; the file is replaced atomically and durably. A signed bundle changed
    without a key would silently lose its signatures (and be refused by a device that trusts
    signed bundles only), so that needs ``drop_signatures=True``.
    """
    if bundle.signatures and signing_key is None and not drop_signatures:
        raise file_error(
            bundle.path / MANIFEST_NAME,
            "is signed; give the key to sign the changed manifest with (or drop_signatures=True)",
        )
    unknown = set(changes) - {f.name for f in fields(Bundle)} | set(changes) & _DERIVED_FIELDS
    if unknown:
        raise ValueError(f"cannot set manifest field(s) {', '.join(sorted(unknown))}")
    return _store(dataclasses.replace(bundle, **changes), signing_key)


# fields rewrite_manifest computes itself
_DERIVED_FIELDS = {"path", "files", "format_version", "manifest_sha256", "signatures"}


def _named_files(bundle: Bundle) -> list[str]:
    """The files the manifest names: graphs, the engine, the fused score's bank."""
    named = list(bundle.models.values()) + ([bundle.engine.file] if bundle.engine else [])
    if bundle.scoring.get("bank"):
        named.append(str(bundle.scoring["bank"]))
    return named


def _store(bundle: Bundle, signing_key: str | Path | None) -> Bundle:
    from st3d_edge.runtime import signing

    folder = bundle.path
    files = describe_files(folder)
    named = _named_files(bundle)
    if bundle.engine and bundle.engine.timing_cache:
        named.append(bundle.engine.timing_cache)
    missing = [name for name in named if name not in files]
    if missing:
        raise ValueError(f"{folder}: the manifest names files that are not there: {', '.join(missing)}")
    bundle = dataclasses.replace(bundle, format_version=FORMAT_VERSION, files=files, signatures=[])
    data = manifest_dict(bundle)
    problem = first_problem(data)
    if problem:
        raise file_error(folder / MANIFEST_NAME, f"field {problem[0]}: {problem[1]}")
    digest = signing.manifest_digest(data)
    signatures = [signing.sign(data, signing.load_private_key(signing_key))] if signing_key else []
    bundle = dataclasses.replace(bundle, manifest_sha256=digest, signatures=signatures)
    write_json_atomic(folder / MANIFEST_NAME, manifest_dict(bundle), durable=True)
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
    trust: list[Path] | None = None,
    trust_dir: Path | None = None,
) -> Bundle:
    """Read and verify a bundle; refuse one the runtime cannot trust, saying what to do.

    ``use_engine=True`` also checks that the bundle has an engine and that it was built by
    this TensorRT on this GPU (``device``; detected with :func:`current_device` when None).
    ``trust``: public keys (PEM files) besides those of the trust folder
    (:func:`st3d_edge.runtime.signing.default_trust_dir`, or ``trust_dir``); when there is any,
    the manifest must be signed by one of them.
    """
    from st3d_edge.runtime import signing

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
    except OSError as exc:
        raise file_error(manifest_path, f"cannot read it ({exc.strerror})") from None
    _check_fields(data, manifest_path)
    try:
        digest = signing.manifest_digest(data)
    except ValueError:
        raise file_error(manifest_path, f"holds a number that is not finite; {_REEXPORT}") from None
    if data.get("manifest_sha256") != digest:
        raise file_error(
            manifest_path,
            "manifest checksum does not match: it was edited or damaged after export; change thresholds "
            f"with `st3d-edge calibrate`, or {_REEXPORT}",
        )
    keys = signing.trusted_keys(list(trust or []), trust_dir)
    if keys:
        signing.verify_signatures(data, keys, manifest_path)
    bundle = _bundle_from_dict(path, data, manifest_path)
    for name, entry in bundle.files.items():
        _verify_file(member_path(path, name), entry, verify_checksums)
    for name in _named_files(bundle):
        if name not in bundle.files:
            raise file_error(manifest_path, f"names {name} without a checksum for it; {_REEXPORT}")
    if use_engine:
        check_engine_device(bundle, device if device is not None else current_device())
    return bundle


def member_path(folder: Path, name: str) -> Path:
    """``folder / name`` when it stays inside the bundle (symlinks resolved); refused otherwise.

    Nothing outside is opened or measured: the check is on the names and the resolved path.
    """
    problem = unsafe_name(name)
    if problem is None:
        root = folder.resolve()
        target = (folder / name).resolve()
        if target == root or root not in target.parents:
            problem = "resolves outside the bundle (a symlink?)"
    if problem:
        raise file_error(folder / MANIFEST_NAME, f"refuses file name {name!r}: {problem}; {_REEXPORT}")
    return folder / name


def _check_fields(data: Any, manifest_path: Path) -> None:
    if not isinstance(data, dict):
        raise file_error(manifest_path, f"not a bundle manifest; {_REEXPORT}")
    version = data.get("format_version")
    if not is_int(version):
        raise file_error(manifest_path, f"has no format_version; not a bundle manifest; {_REEXPORT}")
    if version > FORMAT_VERSION:
        raise file_error(
            manifest_path,
            f"bundle format {version} is newer than this st3d-edge reads ({FORMAT_VERSION}); "
            f"upgrade st3d-edge on this device or {_REEXPORT} with the installed version",
        )
    if 0 < version < MIN_FORMAT_VERSION:
        raise file_error(manifest_path, f"bundle format {version} has no manifest checksum; {_REEXPORT}")
    problem = first_problem(data)
    if problem:
        raise file_error(manifest_path, f"field {problem[0]}: {problem[1]}; {_REEXPORT}")


def _bundle_from_dict(path: Path, data: dict[str, Any], manifest_path: Path) -> Bundle:
    try:
        engine = data.get("engine")
        if engine is not None:
            engine = EngineInfo(**{**engine, "device": DeviceIdentity(**engine["device"])})
        return Bundle(
            path=path,
            format_version=data["format_version"],
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
            manifest_sha256=str(data["manifest_sha256"]),
            signatures=list(data.get("signatures") or []),
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
    bank = load_bank(member_path(bundle.path, str(scoring["bank"])))
    return Scoring("fused", GeometricScore(settings, bank), fusion)


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
