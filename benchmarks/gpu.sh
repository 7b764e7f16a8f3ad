#!/usr/bin/env bash
# Every GPU check in one call, for a lent GPU machine (a few minutes): the `gpu`-marked tests,
# the numba CUDA geometry against the CPU (FPS exact and tiled, kNN, fill) and the scorer network
# in PyTorch CUDA at n = 64000, d = 64, FP32 and FP16. Writes gpu-tests.log, gpu_geometry.json,
# gpu_scorer.json and summary.json (with the card's name) to OUT (default: ./gpu-results).
#
# The machine's image has Python with torch (CUDA), numba-cuda, CuPy, onnxruntime (CPU), scipy,
# tifffile, typer and rich but no network: the wheels it lacks (fpsample, pykdtree, plyfile,
# pypcd4, ...) travel in .whl/ and are installed with --no-index; the package itself is used from
# the working tree. On a machine without a GPU this is its own dry run: the tests skip, the
# benchmarks say "no GPU" and the summary records gpu: null.
#
# usage: bash benchmarks/gpu.sh [OUT]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-results}}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" > /dev/null; then
    site="$(mktemp -d)"
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl && export PYTHONPATH="$PYTHONPATH:$site"
fi
status=0
"$python" -m pytest -q -m gpu tests 2>&1 | tee "$out/gpu-tests.log" || status=1
"$python" benchmarks/gpu_geometry.py --repeats 5 --json "$out/gpu_geometry.json" || status=1
"$python" benchmarks/gpu_scorer.py --json "$out/gpu_scorer.json" || status=1
"$python" - "$out" "$status" <<'PY'
import json, sys
from pathlib import Path

out, status = Path(sys.argv[1]), int(sys.argv[2])
parts = {name: json.loads((out / f"{name}.json").read_text()) for name in ("gpu_geometry", "gpu_scorer")
         if (out / f"{name}.json").is_file()}
tests = (out / "gpu-tests.log").read_text().strip().splitlines()
summary = {"gpu": next((p["gpu"] for p in parts.values() if p.get("gpu")), None),
           "tests": tests[-1] if tests else None, "failed_steps": status, **parts}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(f"summary: gpu {summary['gpu']}, tests: {summary['tests']}")
PY
exit "$status"
