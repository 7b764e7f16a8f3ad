"""Build a serialized TensorRT engine from the scorer's ONNX graph (extra ``gpu``).

One code path for TensorRT 10.3 (JetPack 6 on Jetson Orin) and 11.x, on NVIDIA's documented
Python API only:

- ``Builder.create_network`` with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``: the
  precision of every layer is the precision of its tensors in the ONNX graph (the FP32 or
  the FP16 graph, see ``precision``). TensorRT 11 is always strongly typed and keeps the flag
  as an accepted no-op; no FP16/INT8 builder flags are set, which TensorRT 11 removed.
- ``OnnxParser.parse_from_file``; parser errors are reported one per line.
- ``IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)``.
- One optimization profile for the dynamic point axis n: min / opt / max, defaults
  1024 / n / n (n = the bundle's sample size; a smaller min when n < 1024). k is fixed.
- A timing cache: loaded from an earlier build's ``timing.cache`` when given, and written
  back beside the engine, so rebuilding on the same device skips most tactic timing.
- ``Builder.build_serialized_network``; None (a failed build) is an error.

TensorRT cannot be installed on the machines this package is developed on; the tests check
the options, the profile shapes, the error without TensorRT and the order and arguments of
these calls against a stand-in module, not TensorRT itself. The README says which hardware
ran which path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from st3d_edge.errors import St3dError, file_error, missing_tensorrt
from st3d_edge.io_utils import write_bytes_atomic
from st3d_edge.runtime.bundle import ENGINE_NAME, INPUT_NAMES, TIMING_CACHE_NAME, DeviceIdentity, EngineInfo

DEFAULT_PROFILE_MIN = 1024
DEFAULT_WORKSPACE_MIB = 2048


@dataclass(frozen=True)
class EngineOptions:
    """What the user may choose; None means the default for the bundle's n."""

    profile_min: int | None = None
    profile_opt: int | None = None
    profile_max: int | None = None
    workspace_mib: int = DEFAULT_WORKSPACE_MIB


@dataclass(frozen=True)
class Profile:
    min: int
    opt: int
    max: int

    def shapes(self, name: str, k: int) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """(min, opt, max) shapes of input ``name`` ("points" or "knn")."""
        width = 3 if name == "points" else k
        return (self.min, width), (self.opt, width), (self.max, width)


def resolve_profile(n: int, k: int, options: EngineOptions) -> Profile:
    """The optimization profile for n points: defaults 1024 / n / n, checked for order."""
    if n < k:
        raise St3dError(f"the bundle's n = {n} is smaller than k = {k}")
    maximum = options.profile_max if options.profile_max is not None else n
    optimum = options.profile_opt if options.profile_opt is not None else min(n, maximum)
    minimum = options.profile_min if options.profile_min is not None else min(DEFAULT_PROFILE_MIN, optimum)
    if not k <= minimum <= optimum <= maximum:
        raise St3dError(
            f"engine profile must satisfy k <= min <= opt <= max, got k={k}, "
            f"min={minimum}, opt={optimum}, max={maximum}"
        )
    if options.workspace_mib <= 0:
        raise St3dError(f"engine workspace must be positive, got {options.workspace_mib} MiB")
    return Profile(minimum, optimum, maximum)


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise missing_tensorrt("needed to build a TensorRT engine") from None
    return tensorrt


def build_engine(
    onnx_path: str | Path,
    out_dir: str | Path,
    *,
    n: int,
    k: int,
    precision: str,
    options: EngineOptions = EngineOptions(),
    previous_cache: str | Path | None = None,
) -> EngineInfo:
    """Build ``out_dir/model.engine`` and ``out_dir/timing.cache`` from ``onnx_path``."""
    from st3d_edge.runtime.bundle import current_gpu

    profile = resolve_profile(n, k, options)
    trt = import_tensorrt()
    gpu_name, capability = current_gpu()  # refuses a machine without a CUDA GPU, in one line
    out_dir = Path(out_dir)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        problems = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise file_error(onnx_path, f"TensorRT's ONNX parser refused the graph: {problems}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    optimization_profile = builder.create_optimization_profile()
    for name in INPUT_NAMES:
        optimization_profile.set_shape(name, *profile.shapes(name, k))
    config.add_optimization_profile(optimization_profile)
    has_cache = previous_cache is not None and Path(previous_cache).is_file()
    cache_bytes = Path(previous_cache).read_bytes() if has_cache else b""
    timing_cache = config.create_timing_cache(cache_bytes)
    # a cache from another device or TensorRT is not used (ignore_mismatch=False): start afresh
    if not config.set_timing_cache(timing_cache, False):
        config.set_timing_cache(config.create_timing_cache(b""), False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise file_error(onnx_path, "TensorRT could not build an engine (see its messages above)")
    write_bytes_atomic(out_dir / ENGINE_NAME, bytes(serialized))
    write_bytes_atomic(out_dir / TIMING_CACHE_NAME, bytes(config.get_timing_cache().serialize()))
    return EngineInfo(
        file=ENGINE_NAME,
        precision=precision,
        device=DeviceIdentity(str(trt.__version__), gpu_name, capability),
        profile_min=profile.min,
        profile_opt=profile.opt,
        profile_max=profile.max,
        workspace_bytes=options.workspace_mib << 20,
        timing_cache=TIMING_CACHE_NAME,
    )
