"""Field checks a manifest passes before the runtime trusts it (no torch, no numpy).

Each check takes the parsed manifest (a plain dict, as read from JSON) and returns the
problem in a few words, or None. They run when a bundle is written and when it loads, so a
bad value is refused naming the field, before the first scan. Fields the checks do not know
are left alone; to check a new field, add an entry to :data:`FIELD_CHECKS`.

Rules, where the code alone does not say why:

- integers are JSON integers, not floats or booleans (``true`` is not k = 1);
- n > k: a kNN graph of k entries (the point itself first) needs more than k points;
- thresholds are finite and not negative (scores are distances), or absent (no verdict);
- ``image_score.neighbours`` may not exceed k: the image score averages kNN entries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

Check = Callable[[dict[str, Any]], "str | None"]

PRECISIONS = ("fp32", "fp16")
SCORE_THRESHOLD_KEYS = ("image", "pixel", "image_threshold", "pixel_threshold")
RATE_KEYS = ("pixel_fpr", "image_fpr")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(name: str, minimum: int = 1) -> Check:
    def check(m: dict[str, Any]) -> str | None:
        value = m.get(name)
        if not is_int(value) or value < minimum:
            return f"must be an integer >= {minimum}, not {value!r}"
        return None

    return check


def _n(m: dict[str, Any]) -> str | None:
    n, k = m.get("n"), m.get("k")
    if not is_int(n) or n < 2:
        return f"must be an integer >= 2, not {n!r}"
    if is_int(k) and n <= k:
        return f"must be larger than k = {k}, not {n}"
    return None


def _s(m: dict[str, Any]) -> str | None:
    s = m.get("s")
    return None if is_number(s) and s > 0 else f"must be a finite number > 0, not {s!r}"


def _sampler(m: dict[str, Any]) -> str | None:
    from st3d_edge.geometry.sampling import SAMPLERS

    value = m.get("sampler")
    return None if value in SAMPLERS else f"unknown sampler {value!r} (known: {', '.join(SAMPLERS)})"


def _category(m: dict[str, Any]) -> str | None:
    value = m.get("category")
    return None if isinstance(value, str) and value else f"must be a non-empty string, not {value!r}"


def _precision(m: dict[str, Any]) -> str | None:
    value = m.get("precision")
    if value not in PRECISIONS:
        return f"must be one of {', '.join(PRECISIONS)}, not {value!r}"
    models = m.get("models")
    if isinstance(models, dict) and value not in models:
        return f"{value} has no graph under models"
    return None


def _models(m: dict[str, Any]) -> str | None:
    models = m.get("models")
    if not isinstance(models, dict) or not models:
        return "must map a precision to an ONNX file name"
    for key, name in models.items():
        if key not in PRECISIONS:
            return f"unknown precision {key!r}"
        if problem := unsafe_name(name):
            return f"{key} {name!r}: {problem}"
    return None


def _thresholds(m: dict[str, Any]) -> str | None:
    thresholds = m.get("thresholds")
    if not isinstance(thresholds, dict):
        return f"must be an object, not {thresholds!r}"
    for key in SCORE_THRESHOLD_KEYS:
        value = thresholds.get(key)
        if value is not None and not (is_number(value) and value >= 0):
            return f"{key} must be a finite number >= 0, not {value!r}"
    for key in RATE_KEYS:
        value = thresholds.get(key)
        if value is not None and not (is_number(value) and 0 <= value < 1):
            return f"{key} must be a rate in [0, 1), not {value!r}"
    return None


def _image_score(m: dict[str, Any]) -> str | None:
    settings = m.get("image_score")
    if not isinstance(settings, dict):
        return f"must be an object, not {settings!r}"
    neighbours, k = settings.get("neighbours"), m.get("k")
    if neighbours is None:
        return None
    if not is_int(neighbours) or neighbours < 1:
        return f"neighbours must be a positive integer, not {neighbours!r}"
    if is_int(k) and neighbours > k:
        return f"neighbours = {neighbours} exceeds k = {k}"
    return None


def _files(m: dict[str, Any]) -> str | None:
    files = m.get("files")
    if not isinstance(files, dict):
        return "must map file names to their sha256 and size"
    for name, entry in files.items():
        problem = unsafe_name(name)
        if problem:
            return f"{name!r}: {problem}"
        if not isinstance(entry, dict) or not _HEX64.match(str(entry.get("sha256", ""))):
            return f"{name}: needs a sha256 of 64 hex digits"
        if not is_int(entry.get("size")) or entry["size"] < 0:
            return f"{name}: needs a size in bytes"
    return None


def _engine(m: dict[str, Any]) -> str | None:
    engine = m.get("engine")
    if engine is None:
        return None
    if not isinstance(engine, dict):
        return f"must be an object or null, not {engine!r}"
    for key in ("file", "timing_cache"):
        name = engine.get(key)
        if name is not None and (problem := unsafe_name(name)):
            return f"{key} {name!r}: {problem}"
    if engine.get("precision") not in PRECISIONS:
        return f"precision must be one of {', '.join(PRECISIONS)}"
    low, opt, high = (engine.get(f"profile_{x}") for x in ("min", "opt", "max"))
    if not all(is_int(v) and v > 0 for v in (low, opt, high)) or not low <= opt <= high:
        return f"profile must be integers 0 < min <= opt <= max, not {low!r}/{opt!r}/{high!r}"
    return None


def unsafe_name(name: Any) -> str | None:
    """Why a file name may not appear in a manifest, or None for a plain name inside the bundle."""
    if not isinstance(name, str) or not name:
        return "not a file name"
    if "\\" in name or "\0" in name:
        return "not a plain relative name"
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith("~"):
        return "reaches outside the bundle"
    return None


FIELD_CHECKS: dict[str, Check] = {
    "format_version": _positive_int("format_version"),
    "category": _category,
    "k": _positive_int("k"),
    "n": _n,
    "d": _positive_int("d", minimum=0),
    "s": _s,
    "sampler": _sampler,
    "models": _models,
    "precision": _precision,
    "thresholds": _thresholds,
    "image_score": _image_score,
    "files": _files,
    "engine": _engine,
}


def first_problem(manifest: dict[str, Any]) -> tuple[str, str] | None:
    """(field, problem) of the first field that fails its check, or None."""
    for name, check in FIELD_CHECKS.items():
        problem = check(manifest)
        if problem:
            return name, problem
    return None
