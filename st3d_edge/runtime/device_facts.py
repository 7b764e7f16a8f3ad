"""What a latency figure was measured on: device, Jetson power mode and clocks, software versions.

Everything is read from files (no root, no tools run), each under ``root`` so tests can lay out
a fake device; a fact that cannot be read is None, never a guess:

``device``         the device tree's model (a Jetson names itself there), else the CPU model
``l4t``            ``/etc/nv_tegra_release`` ("# R36 (release), REVISION: 4.0, ..." -> "36.4.0")
``jetpack``        the installed version of the ``nvidia-jetpack`` package (dpkg's status file)
``power_mode``     nvpmodel's mode id from its status file (``/var/lib/nvpmodel/status``)
``gpu_freq_hz``    the GPU's devfreq ``cur_freq``; ``gpu_max_freq_hz`` its ``max_freq``
``jetson_clocks``  True when the GPU's devfreq minimum equals its maximum (what jetson_clocks
                   sets), False when it does not, None without a Jetson GPU devfreq node
``emc_freq_hz``    the memory clock from the BPMP debug file (readable as root only)
``cuda``           the CUDA toolkit's ``version.json`` (JetPack installs it with the toolkit)
``tensorrt``, ``onnxruntime``  the installed Python packages' versions
"""

from __future__ import annotations

import json
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

# devfreq node names of Jetson GPUs (Orin: ga10b, Xavier: gv11b, TX2: gp10b, Nano: gpu)
_GPU_DEVFREQ = re.compile(r"(ga10b|gv11b|gp10b|gpu)$")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def l4t_release(text: str | None) -> str | None:
    """ "# R36 (release), REVISION: 4.0, ..." -> "36.4.0"."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def dpkg_version(status: str | None, package: str) -> str | None:
    """The version of an installed package in dpkg's status file."""
    for block in (status or "").split("\n\n"):
        if re.search(rf"^Package: {re.escape(package)}$", block, re.M):
            version = re.search(r"^Version: (\S+)$", block, re.M)
            return version.group(1) if version else None
    return None


def power_mode(status: str | None) -> str | None:
    """nvpmodel's status file ("pmode:0000 fmode:normal") -> "0"."""
    match = re.search(r"pmode:(\d+)", status or "")
    return str(int(match.group(1))) if match else None


def _package_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cpu_model(root: Path) -> str | None:
    match = re.search(r"^model name\s*:\s*(.+)$", _read(root / "proc/cpuinfo") or "", re.M)
    return match.group(1).strip() if match else (platform.processor() or None)


def _gpu_devfreq(root: Path) -> Path | None:
    nodes = sorted(p for p in (root / "sys/class/devfreq").glob("*") if _GPU_DEVFREQ.search(p.name))
    return nodes[0] if nodes else None


def device_facts(root: str | Path = "/") -> dict[str, Any]:
    root = Path(root)
    gpu = _gpu_devfreq(root)
    freq = {name: _int(_read(gpu / name)) if gpu else None for name in ("cur_freq", "min_freq", "max_freq")}
    clocks_pinned = None
    if freq["min_freq"] is not None and freq["max_freq"] is not None:
        clocks_pinned = freq["min_freq"] == freq["max_freq"]
    cuda = _read(root / "usr/local/cuda/version.json")
    try:
        cuda_version = json.loads(cuda)["cuda"]["version"] if cuda else None
    except (ValueError, KeyError, TypeError):
        cuda_version = None
    return {
        "device": _read(root / "proc/device-tree/model") or _cpu_model(root),
        "machine": platform.machine(),
        "l4t": l4t_release(_read(root / "etc/nv_tegra_release")),
        "jetpack": dpkg_version(_read(root / "var/lib/dpkg/status"), "nvidia-jetpack"),
        "power_mode": power_mode(_read(root / "var/lib/nvpmodel/status")),
        "gpu_freq_hz": freq["cur_freq"],
        "gpu_max_freq_hz": freq["max_freq"],
        "jetson_clocks": clocks_pinned,
        "emc_freq_hz": _int(_read(root / "sys/kernel/debug/bpmp/debug/clk/emc/rate")),
        "cuda": cuda_version,
        "tensorrt": _package_version("tensorrt", "tensorrt-cu12", "tensorrt-cu11"),
        "onnxruntime": _package_version("onnxruntime", "onnxruntime-gpu"),
    }
