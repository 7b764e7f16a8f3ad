"""Per-category evaluation results, their mean, and the table / JSON / CSV / PNG reports.

The mean row averages each metric over categories (as the paper's Table 1 does); the mean
inference time is the mean of the per-category means, and the peak memory is the maximum.
A metric that is undefined for a category (AU-PRO without any defective test scan) is NaN and
makes the mean NaN too, rather than silently averaging fewer categories.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from st3d_edge.errors import MissingExtraError
from st3d_edge.evaluation.pro import HEADLINE_LIMIT, LIMITS
from st3d_edge.io_utils import atomic_path, write_json_atomic, write_text_atomic

# Integration limits for the AU-PRO-vs-limit figure (paper Figure 5).
CURVE_LIMITS = tuple(float(x) for x in np.round(np.linspace(0.01, 1.0, 100), 4))
MEAN = "mean"


@dataclass
class CategoryResult:
    category: str
    method: str
    scans: int
    defective: int
    au_pro: dict[float, float]  # normalised AU-PRO at each of LIMITS
    i_auroc: float
    infer_ms: float  # mean per scan: sampling + kNN + scoring (no file reading, no interpolation)
    fill_ms: float  # mean per scan: harmonic interpolation of the map
    peak_rss_mb: float  # the process's resident-set high-water mark after this category
    peak_gpu_mb: float | None = None
    limit_curve: list[float] = field(default_factory=list)  # AU-PRO at CURVE_LIMITS
    map_sigma: float | None = None  # the maps' Gaussian blur (st3d_edge.evaluation.maps.blur_map)
    # Each defect type against the good scans alone: {type: {"au_pro": AU-PRO@HEADLINE_LIMIT,
    # "i_auroc": ...}}; empty when the test split has a single defect type.
    by_defect: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def headline(self) -> float:
        return self.au_pro[HEADLINE_LIMIT]


def mean_result(results: list[CategoryResult]) -> CategoryResult:
    """The mean row over categories of one method."""
    if not results:
        raise ValueError("no results to average")

    def mean(values) -> float:
        return float(np.mean(values))

    gpu = [r.peak_gpu_mb for r in results if r.peak_gpu_mb is not None]
    curves = [r.limit_curve for r in results]
    return CategoryResult(
        category=MEAN,
        method=results[0].method,
        scans=sum(r.scans for r in results),
        defective=sum(r.defective for r in results),
        au_pro={lim: mean([r.au_pro[lim] for r in results]) for lim in results[0].au_pro},
        i_auroc=mean([r.i_auroc for r in results]),
        infer_ms=mean([r.infer_ms for r in results]),
        fill_ms=mean([r.fill_ms for r in results]),
        peak_rss_mb=max(r.peak_rss_mb for r in results),
        peak_gpu_mb=max(gpu) if gpu else None,
        limit_curve=list(np.mean(curves, axis=0)) if all(curves) else [],
        map_sigma=results[0].map_sigma if len({r.map_sigma for r in results}) == 1 else None,
        by_defect=_mean_by_defect(results),
    )


def _mean_by_defect(results: list[CategoryResult]) -> dict[str, dict[str, float]]:
    """The per-defect-type metrics averaged over the categories that have that type."""
    kinds = sorted({kind for r in results for kind in r.by_defect})
    return {
        kind: {
            metric: float(np.mean([r.by_defect[kind][metric] for r in results if kind in r.by_defect]))
            for metric in ("au_pro", "i_auroc")
        }
        for kind in kinds
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


COLUMNS = (
    ["category", "scans"]
    + [f"AU-PRO@{lim:g}" for lim in LIMITS]
    + ["I-AUROC", "infer_ms", "fill_ms", "peak_rss_mb", "peak_gpu_mb"]
)


def table_row(result: CategoryResult) -> list[str]:
    return (
        [result.category, str(result.scans)]
        + [_fmt(result.au_pro.get(lim)) for lim in LIMITS]
        + [
            _fmt(result.i_auroc),
            _fmt(result.infer_ms, 1),
            _fmt(result.fill_ms, 1),
            _fmt(result.peak_rss_mb, 0),
            _fmt(result.peak_gpu_mb, 0),
        ]
    )


def format_table(results: list[CategoryResult], title: str = "") -> str:
    """A plain fixed-width table of the categories and their mean (readable in any terminal or log)."""
    rows = [table_row(r) for r in results]
    if results:
        rows.append(table_row(mean_result(results)))
    return _fixed_width(list(COLUMNS), rows, title)


def _fixed_width(header: list[str], rows: list[list[str]], title: str = "") -> str:
    """Left-aligned first column, right-aligned others, a dashed rule under the header."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)])

    lines = [title] if title else []
    lines += [line(header), line(["-" * w for w in widths])]
    lines += [line(r) for r in rows]
    return "\n".join(lines)


def format_defect_table(results: list[CategoryResult]) -> str:
    """Each defect type's AU-PRO@HEADLINE_LIMIT / image AUROC against the good scans alone, per
    category and mean; empty when no category has two or more defect types."""
    mean = mean_result(results) if results else None
    if mean is None or not mean.by_defect:
        return ""
    kinds = list(mean.by_defect)  # every category's types, sorted

    def cell(result: CategoryResult, kind: str) -> str:
        if kind not in result.by_defect:
            return "-"
        metrics = result.by_defect[kind]
        return f"{_fmt(metrics['au_pro'])} / {_fmt(metrics['i_auroc'])}"

    rows = [r for r in results if r.by_defect] + [mean]
    title = f"by defect type, each against the good scans: AU-PRO@{HEADLINE_LIMIT:g} / I-AUROC"
    return _fixed_width(
        ["category", *kinds], [[r.category] + [cell(r, k) for k in kinds] for r in rows], title
    )


def _plain(result: CategoryResult) -> dict:
    data = asdict(result)
    data["au_pro"] = {f"{lim:g}": value for lim, value in result.au_pro.items()}
    data.pop("limit_curve")
    return data


def report_dict(results: list[CategoryResult]) -> dict:
    """The JSON report: the categories, their mean, and the AU-PRO-vs-limit curve of each."""
    return {
        "method": results[0].method if results else None,
        "limits": list(LIMITS),
        "headline_limit": HEADLINE_LIMIT,
        "categories": [_plain(r) for r in results],
        "mean": _plain(mean_result(results)) if results else None,
        "curve_limits": list(CURVE_LIMITS),
        "curves": {r.category: [float(v) for v in r.limit_curve] for r in results},
    }


def write_reports(results: list[CategoryResult], out_dir: str | Path, stem: str = "evaluation") -> list[Path]:
    """``<stem>.json`` and ``<stem>.csv`` in ``out_dir``; returns the paths written."""
    out_dir = Path(out_dir)
    json_path = write_json_atomic(out_dir / f"{stem}.json", _finite_or_none(report_dict(results)))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for result in results + ([mean_result(results)] if results else []):
        writer.writerow(table_row(result))
    csv_path = write_text_atomic(out_dir / f"{stem}.csv", text.getvalue())
    return [json_path, csv_path]


def _finite_or_none(obj):
    """JSON has no NaN: undefined metrics are written as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_none(v) for v in obj]
    return obj


def plot_pro_vs_limit(series: dict[str, list[CategoryResult]], path: str | Path) -> Path:
    """PNG of the mean AU-PRO over categories against the integration limit, one line per method."""
    # A bare Figure renders with Agg and leaves pyplot's global backend alone.
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError("matplotlib", "train", "needed for the PRO plot") from None

    fig = Figure(figsize=(5.5, 4.0), dpi=120)
    ax = fig.subplots()
    for label, results in series.items():
        if results and all(r.limit_curve for r in results):
            ax.plot(CURVE_LIMITS, mean_result(results).limit_curve, label=label)
    ax.axvline(HEADLINE_LIMIT, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("integration limit (false positive rate)")
    ax.set_ylabel("mean AU-PRO")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
