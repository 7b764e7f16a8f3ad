"""A TensorRT engine for a bundle, built on the device without torch, kept only if it checks out.

What ``st3d-edge engine BUNDLE`` does (the ``runtime`` or ``jetson`` install plus TensorRT):

1. load and verify the bundle (checksums) and read its check clouds for the precision;
2. build the engine from the bundle's ONNX graph of that precision, with the timing cache of
   an earlier build on this device when the bundle has one (:mod:`.tensorrt_build`);
3. run the engine on the check clouds that fit its optimization profile and compare its
   scores with onnxruntime's stored at export (:mod:`.check_clouds`); an engine beyond the
   precision's bound is refused and nothing is written;
4. record the engine, the TensorRT version and the GPU in the manifest, with the checksums of
   the new files (``runtime.bundle.rewrite_manifest``: checksummed, and signed again when the
   bundle was signed).

The bundle is rewritten as a whole under a temporary name (``io_utils.atomic_dir``): a failed
build or check leaves the bundle as it was. ``export --format engine`` calls
:func:`build_checked_engine` inside its own temporary folder, so both paths check alike.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st3d_edge.errors import file_error
from st3d_edge.io_utils import atomic_dir
from st3d_edge.runtime.bundle import (
    MANIFEST_NAME,
    TIMING_CACHE_NAME,
    Bundle,
    EngineInfo,
    load_bundle,
    rewrite_manifest,
)
from st3d_edge.runtime.check_clouds import CheckClouds, CheckResult, compare, read_check_clouds
from st3d_edge.runtime.tensorrt_build import EngineOptions, build_engine, import_tensorrt, resolve_profile


@dataclass(frozen=True)
class EngineReport:
    bundle: Bundle
    check: CheckResult


def open_engine(path: Path) -> Any:
    """The engine as something with ``run(points, knn) -> scores`` (host arrays)."""
    from st3d_edge.runtime.backends import TensorRTBackend

    return TensorRTBackend(path)


def build_checked_engine(
    onnx_path: Path,
    folder: Path,
    *,
    n: int,
    k: int,
    precision: str,
    checks: CheckClouds,
    options: EngineOptions,
    previous_cache: Path | None = None,
    where: Path | None = None,
) -> tuple[EngineInfo, CheckResult]:
    """Build ``folder/model.engine`` from ``onnx_path`` and check it; raise if it drifts.

    ``where``: the bundle the user named, for the error messages (``folder`` is usually the
    temporary folder the bundle is rewritten in).
    """
    where = where or onnx_path.parent
    profile = resolve_profile(n, k, options)
    sizes = sorted(len(points) for points, _ in checks.clouds)
    if not any(profile.min <= size <= profile.max for size in sizes):
        raise file_error(
            where,
            f"no check cloud fits the engine profile {profile.min}..{profile.max} points (they have "
            f"{', '.join(map(str, sizes))}); choose a --profile-min of at most {sizes[-1]}",
        )
    info = build_engine(
        onnx_path, folder, n=n, k=k, precision=precision, options=options, previous_cache=previous_cache
    )
    result = compare(open_engine(folder / info.file).run, checks, precision, sizes=(profile.min, profile.max))
    if not result.passed:
        raise file_error(
            where,
            f"the {precision} TensorRT engine's scores differ from onnxruntime's on the bundle's check "
            f"clouds by up to {result.max_relative_error:.2e} (relative; bound {result.limit:.0e}); "
            "the engine was not kept",
        )
    return info, result


def engine_for_bundle(
    bundle_path: str | Path,
    *,
    precision: str | None = None,
    options: EngineOptions = EngineOptions(),
    signing_key: str | Path | None = None,
) -> EngineReport:
    """Build, check and add a TensorRT engine to the bundle at ``bundle_path`` (on the device).

    A signed bundle is signed again with ``signing_key`` (its manifest changes); without a key
    it is refused before any work, since dropping its signatures would make devices that trust
    signed bundles only refuse it.
    """
    bundle = load_bundle(bundle_path)
    if bundle.signatures and signing_key is None:
        raise file_error(
            bundle.path / MANIFEST_NAME,
            "is signed: give --sign KEY to sign it again once the engine is in its manifest",
        )
    precision = precision or bundle.precision
    onnx_name = bundle.onnx_path(precision).name  # refuses a precision the bundle has no graph for
    checks = read_check_clouds(bundle.path, set(bundle.files), precision)
    import_tensorrt()  # a missing TensorRT is told before any copying
    resolve_profile(bundle.n, bundle.k, options)
    previous_cache = bundle.path / TIMING_CACHE_NAME
    with atomic_dir(bundle.path) as tmp:
        shutil.copytree(bundle.path, tmp, dirs_exist_ok=True)
        info, result = build_checked_engine(
            bundle.path / onnx_name,  # the same bytes as the copy; TensorRT's errors name the real file
            tmp,
            n=bundle.n,
            k=bundle.k,
            precision=precision,
            checks=checks,
            options=options,
            previous_cache=previous_cache if previous_cache.is_file() else None,
            where=bundle.path,
        )
        _refresh_triton_plans(tmp, info)
        updated = rewrite_manifest(
            dataclasses.replace(bundle, path=tmp),
            signing_key=signing_key,
            precision=precision,
            engine=info,
            versions={**bundle.versions, "tensorrt": info.device.tensorrt_version},
            parity={**bundle.parity, "engine_check": result.as_dict()},
        )
    return EngineReport(dataclasses.replace(updated, path=bundle.path), result)


def _refresh_triton_plans(folder: Path, info: EngineInfo) -> None:
    """A Triton repository that serves an engine gets the new one (it is a copy of the engine)."""
    for plan in folder.glob("triton/*/1/model.plan"):
        shutil.copyfile(folder / info.file, plan)
