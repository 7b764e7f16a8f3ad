"""Inference backends: the exported scorer graph ``points (n,3) float32, knn (n,k) int32 -> scores (n,)``.

Three backends share one method, ``run(points, knn) -> scores``:

* :class:`OnnxRuntimeBackend` runs ``model.onnx``. On the CPU it takes and returns numpy
  arrays. With onnxruntime-gpu and a GPU it uses the CUDA execution provider (and TensorRT's
  provider first when the ``tensorrt`` package imports), and device arrays from the CUDA
  geometry are bound by pointer through I/O binding, so they are not copied to the host.
* ``NumbaCpuBackend`` (:mod:`st3d_edge.runtime.cpu_scorer`) runs the same FP32 graph's
  weights with numba kernels on the CPU, point by point: no (n, k, c) intermediates, so it is
  faster and leaner than onnxruntime on a CPU (800 x 800 scan, n = 64000: about 1.2 s against
  1.35-1.5 s, 0.55 GiB peak RSS against 1.4 GiB; benchmarks/runtime.py).
* :class:`TensorRTBackend` runs ``model.engine`` with TensorRT's own Python API: deserialize,
  one execution context, device buffers for the largest n allocated once and reused, the input
  shape set per scan (n is dynamic), ``execute_async_v3`` on a stream. TensorRT cannot be
  installed on the machines this package is developed on, so this class is a thin layer on the
  documented API (``IRuntime.deserialize_cuda_engine``, ``create_execution_context``,
  ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) and is untested on real
  TensorRT (the tests drive it with a stand-in module). The engine's optimization profile
  bounds n: ``min_n`` (default 1024 at export) to ``max_n``. The pipeline refuses a scan whose
  sample would fall below ``min_n`` with a one-line error naming the scan, and ``run`` checks
  the shape again before anything reaches TensorRT.

:func:`select_backend` implements ``--backend auto``: TensorRT when the bundle has an engine
built for this GPU, then onnxruntime's CUDA provider, then the numba CPU scorer (onnxruntime on
the CPU when numba or onnx is missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from st3d_edge.errors import MissingExtraError, St3dError, file_error, gpu_extra, missing_tensorrt
from st3d_edge.runtime.bundle import INPUT_NAMES, OUTPUT_NAME
from st3d_edge.runtime.geometry_backend import is_device_array, to_host_array

BACKEND_CHOICES = ("auto", "onnxruntime", "numba", "tensorrt")


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise MissingExtraError("onnxruntime", "runtime") from None
    return onnxruntime


def _device_pointer(array: Any) -> int:
    return int(array.__cuda_array_interface__["data"][0])


def onnxruntime_gpu_providers() -> list[str]:
    """The GPU execution providers this onnxruntime offers and can use here (may be empty)."""
    from st3d_edge.runtime.geometry_backend import cuda_geometry_available

    ort = _import_onnxruntime()
    available = set(ort.get_available_providers())
    if "CUDAExecutionProvider" not in available or not cuda_geometry_available():
        return []
    providers = []
    # onnxruntime-gpu lists TensorRT's provider even when TensorRT's libraries are absent;
    # only ask for it when the tensorrt package (which carries those libraries) imports.
    if "TensorrtExecutionProvider" in available and _tensorrt_importable():
        providers.append("TensorrtExecutionProvider")
    providers.append("CUDAExecutionProvider")
    return providers


def _tensorrt_importable() -> bool:
    try:
        import tensorrt  # noqa: F401
    except Exception:
        return False
    return True


class OnnxRuntimeBackend:
    """onnxruntime on the CPU (default) or with GPU execution providers."""

    def __init__(self, model_path: str | Path, providers: list[str] | None = None, threads: int = 0) -> None:
        ort = _import_onnxruntime()
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise file_error(self.model_path, "ONNX model not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # warnings about unused initializers etc. are not the user's problem
        providers = list(providers or []) + ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
            raise file_error(
                self.model_path, f"onnxruntime cannot load it ({str(exc).splitlines()[0]})"
            ) from None
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if sorted(inputs) != sorted(INPUT_NAMES) or OUTPUT_NAME not in outputs:
            raise file_error(
                self.model_path,
                f"not a scorer graph: inputs {inputs}, outputs {outputs} "
                f"(expected inputs {list(INPUT_NAMES)} and output {OUTPUT_NAME!r})",
            )
        # the knn input's fixed width, when the graph fixes it (the exporter does)
        width = next(i.shape[1] for i in self.session.get_inputs() if i.name == "knn")
        self.k = width if isinstance(width, int) else None
        self.providers = self.session.get_providers()
        self.on_device = self.providers[0] != "CPUExecutionProvider"
        self.name = "onnxruntime-" + (
            "cpu" if not self.on_device else self.providers[0].replace("ExecutionProvider", "").lower()
        )
        self.device = "CPU" if not self.on_device else _gpu_name()

    def run(self, points: Any, knn: Any) -> Any:
        if self.on_device and is_device_array(points):
            return self._run_bound(points, knn)
        feeds = {
            "points": np.ascontiguousarray(to_host_array(points), dtype=np.float32),
            "knn": np.ascontiguousarray(to_host_array(knn), dtype=np.int32),
        }
        return self.session.run([OUTPUT_NAME], feeds)[0]

    def _run_bound(self, points: Any, knn: Any) -> Any:
        """Device arrays in, a device array out: I/O binding by pointer, no host copies."""
        from numba import cuda

        n, k = int(knn.shape[0]), int(knn.shape[1])
        scores = cuda.device_array((n,), dtype=np.float32)
        binding = self.session.io_binding()
        binding.bind_input("points", "cuda", 0, np.float32, (n, 3), _device_pointer(points))
        binding.bind_input("knn", "cuda", 0, np.int32, (n, k), _device_pointer(knn))
        binding.bind_output(OUTPUT_NAME, "cuda", 0, np.float32, (n,), _device_pointer(scores))
        self.session.run_with_iobinding(binding)
        return scores


def _gpu_name() -> str:
    try:
        from numba import cuda

        name = cuda.get_current_device().name
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return "CUDA GPU"


def _stream_handle(stream: Any) -> int:
    """The raw cudaStream_t of a numba stream (ctypes binding: c_void_p; NVIDIA binding: CUstream)."""
    handle = stream.handle
    value = getattr(handle, "value", handle)  # c_void_p.value is None for the default stream
    return int(value or 0)


class TensorRTBackend:
    """A serialized TensorRT engine run with ``execute_async_v3``; n must lie in ``min_n..max_n``."""

    name = "tensorrt"
    on_device = True

    def __init__(self, engine_path: str | Path) -> None:
        try:
            import tensorrt as trt
        except ImportError:
            raise missing_tensorrt() from None
        try:
            from numba import cuda
        except ImportError:
            raise MissingExtraError("numba-cuda", gpu_extra(), "device buffers for TensorRT") from None
        self.engine_path = Path(engine_path)
        self._cuda = cuda
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise file_error(
                self.engine_path,
                "TensorRT cannot deserialize this engine (built by another TensorRT or for another GPU); "
                "export the bundle again on this device",
            )
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        if sorted(names) != sorted((*INPUT_NAMES, OUTPUT_NAME)):
            raise file_error(self.engine_path, f"not a scorer engine: tensors {names}")
        self.context = self.engine.create_execution_context()
        # Profile 0's (min, opt, max) shapes; the buffers are sized for the largest n once.
        min_points, _, max_points = self.engine.get_tensor_profile_shape("points", 0)
        self.min_n = int(min_points[0])
        self.max_n = int(max_points[0])
        self.k = int(self.engine.get_tensor_shape("knn")[1])
        self.stream = cuda.stream()
        self._points = cuda.device_array((self.max_n, 3), dtype=np.float32)
        self._knn = cuda.device_array((self.max_n, self.k), dtype=np.int32)
        self._scores = cuda.device_array((self.max_n,), dtype=np.float32)
        self.context.set_tensor_address(OUTPUT_NAME, _device_pointer(self._scores))
        self.device = _gpu_name()

    def run(self, points: Any, knn: Any) -> Any:
        n = int(knn.shape[0])
        if not self.min_n <= n <= self.max_n or int(knn.shape[1]) != self.k:
            raise file_error(
                self.engine_path,
                f"the engine takes {self.min_n} to {self.max_n} points with k = {self.k} (its "
                f"optimization profile), got {n} points with k = {int(knn.shape[1])}",
            )
        on_device = is_device_array(points)
        if on_device:
            # The CUDA geometry's arrays are used in place: no copy between the stages.
            self.context.set_tensor_address("points", _device_pointer(points))
            self.context.set_tensor_address("knn", _device_pointer(knn))
        else:
            self._points[:n].copy_to_device(
                np.ascontiguousarray(points, dtype=np.float32), stream=self.stream
            )
            self._knn[:n].copy_to_device(np.ascontiguousarray(knn, dtype=np.int32), stream=self.stream)
            self.context.set_tensor_address("points", _device_pointer(self._points))
            self.context.set_tensor_address("knn", _device_pointer(self._knn))
        self.context.set_input_shape("points", (n, 3))
        self.context.set_input_shape("knn", (n, self.k))
        if not self.context.execute_async_v3(_stream_handle(self.stream)):
            raise St3dError(f"{self.engine_path}: TensorRT failed to run the engine (see its log above)")
        if on_device:
            self.stream.synchronize()
            return self._scores[:n]
        scores = self._scores[:n].copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return scores


@dataclass
class Selection:
    """The backend ``select_backend`` built and the sentence saying why (printed by the commands)."""

    backend: Any
    reason: str


def select_backend(
    choice: str,
    onnx_path: str | Path,
    engine_path: str | Path | None = None,
    threads: int = 0,
    gpu_onnx_path: str | Path | None = None,
) -> Selection:
    """Build the inference backend for ``--backend auto|onnxruntime|numba|tensorrt``.

    ``engine_path`` is the bundle's engine when it has one that was built for this GPU (the
    bundle loader decides that), else None. ``auto``: TensorRT when there is such an engine and
    TensorRT imports, then onnxruntime with its GPU providers when onnxruntime-gpu sees a GPU,
    then the numba CPU scorer, then onnxruntime on the CPU (numba or onnx not installed, or a
    graph the numba scorer does not know). ``onnx_path`` is the FP32 graph (always used on the CPU);
    ``gpu_onnx_path`` the graph of the bundle's precision for the GPU providers (default: the same).
    """
    if choice not in BACKEND_CHOICES:
        raise St3dError(f"unknown backend {choice!r}; choose one of: {', '.join(BACKEND_CHOICES)}")
    if choice == "tensorrt":
        if engine_path is None:
            raise St3dError(
                f"{Path(onnx_path).parent}: the bundle has no TensorRT engine for this GPU; "
                "export it with `st3d-edge export --format engine` on this device"
            )
        return Selection(TensorRTBackend(engine_path), "TensorRT engine (asked for)")
    if choice == "numba":
        from st3d_edge.runtime.cpu_scorer import NumbaCpuBackend

        return Selection(NumbaCpuBackend(onnx_path, threads=threads), "numba CPU scorer (asked for)")
    if choice == "auto" and engine_path is not None and _tensorrt_importable():
        return Selection(TensorRTBackend(engine_path), "TensorRT: the bundle has an engine for this GPU")
    gpu = onnxruntime_gpu_providers()
    path = gpu_onnx_path if gpu and gpu_onnx_path is not None else onnx_path
    if choice == "onnxruntime" or gpu:
        backend = OnnxRuntimeBackend(path, providers=gpu, threads=threads)
        if backend.on_device:
            return Selection(backend, f"onnxruntime with {', '.join(backend.providers[:-1])}")
        if choice == "onnxruntime":
            return Selection(backend, "onnxruntime on the CPU (asked for)")
    why = "no GPU execution provider" if not gpu else "the GPU providers did not load"
    if not _numba_cpu_available():
        backend = OnnxRuntimeBackend(onnx_path, threads=threads)
        return Selection(backend, f"onnxruntime on the CPU ({why}; numba or onnx not installed)")
    from st3d_edge.runtime.cpu_scorer import NumbaCpuBackend

    try:
        return Selection(NumbaCpuBackend(onnx_path, threads=threads), f"numba CPU scorer ({why})")
    except St3dError as exc:  # a graph the numba scorer does not know: onnxruntime runs any graph
        backend = OnnxRuntimeBackend(onnx_path, threads=threads)
        return Selection(backend, f"onnxruntime on the CPU ({why}; numba scorer: {exc})")


def _numba_cpu_available() -> bool:
    from st3d_edge.numba_support import numba_available

    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return numba_available()
