"""`st3d-edge evaluate`: the MVTec 3D-AD protocol on the test split of trained categories.

With ``--model BUNDLE`` it evaluates what is deployed instead: the bundle's ONNX graphs (or its
TensorRT engine) through the runtime pipeline ``infer`` uses, one row per variant, without torch
(``st3d_edge.commands._evaluate_deployed``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from st3d_edge.commands._common import (
    BackendChoice,
    DeviceChoice,
    IntrinsicsOption,
    MasksOption,
    ScoringChoice,
    UnitsChoice,
    UnitsOption,
    print_error,
    user_errors,
)
from st3d_edge.commands.export import Precision
from st3d_edge.evaluation.maps import MAP_SIGMA
from st3d_edge.train.options import SamplerChoice


def evaluate_command(
    data: Annotated[Path | None, typer.Option(help="Dataset root in MVTec 3D-AD layout.")] = None,
    category: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="Category to evaluate (repeat for several; default: every category in --data).",
        ),
    ] = None,
    workdir: Annotated[
        Path, typer.Option(help="Folder holding the run folders (<workdir>/<category>).")
    ] = Path("st3d-runs"),
    out: Annotated[
        Path | None, typer.Option(help="Where the reports go (default: <workdir>/evaluation).")
    ] = None,
    maps: Annotated[
        Path | None, typer.Option(help="Anomaly map root (default: <out>/maps); MVTec's evaluation reads it.")
    ] = None,
    no_maps: Annotated[bool, typer.Option("--no-maps", help="Do not write the per-scan TIFF maps.")] = False,
    device: Annotated[DeviceChoice, typer.Option(help="Where the networks run.")] = DeviceChoice.cpu,
    sampler: Annotated[
        SamplerChoice | None, typer.Option(help="Override the point sampler recorded in the model's config.")
    ] = None,
    scoring: Annotated[
        ScoringChoice | None,
        typer.Option(
            help="Anomaly score: fused (student + FPFH bank) or student (3D-ST alone); default: the run's."
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Also print where the top-scoring points of each good test scan lie (holes, border, plane).",
        ),
    ] = False,
    good: Annotated[
        list[str] | None,
        typer.Option(metavar="DIR_OR_GLOB", help="Good test scans, instead of --data (with --defective)."),
    ] = None,
    defective: Annotated[
        list[str] | None, typer.Option(metavar="DIR_OR_GLOB", help="Defective test scans (with --good).")
    ] = None,
    masks: MasksOption = None,
    units: UnitsOption = UnitsChoice.m,
    intrinsics: IntrinsicsOption = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="Evaluate this export bundle through the runtime pipeline instead."),
    ] = None,
    precision: Annotated[
        list[Precision] | None,
        typer.Option(help="With --model: ONNX graph(s) to evaluate (repeat; default: every one it has)."),
    ] = None,
    backend: Annotated[
        BackendChoice,
        typer.Option(
            help="With --model: onnxruntime (the ONNX graphs), numba (the FP32 graph on numba CPU "
            "kernels) or tensorrt (the bundle's engine)."
        ),
    ] = BackendChoice.onnxruntime,
    with_torch: Annotated[
        bool, typer.Option("--with-torch", help="With --model: add the run folder's PyTorch model as a row.")
    ] = False,
    map_sigma: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Gaussian blur of every map before it is written and measured, in px of a 224-px map "
            "(scaled to the scan), as BTF's and PatchCore's evaluation; 0: the raw maps.",
        ),
    ] = MAP_SIGMA,
) -> None:
    """Evaluate trained categories: AU-PRO at several FPR limits, image AUROC, time and memory."""
    if model is not None:
        from st3d_edge.commands._evaluate_deployed import evaluate_deployed

        evaluate_deployed(data, model, precision, backend, with_torch, workdir, out, category, map_sigma)
        return
    with user_errors():
        from st3d_edge.console import out as stdout
        from st3d_edge.console import wrote
        from st3d_edge.data.mvtec import list_categories
        from st3d_edge.errors import St3dError, file_error

        if good or defective:
            _evaluate_folders(
                good=good,
                defective=defective,
                masks=masks,
                category=category,
                workdir=workdir,
                out=out,
                maps=maps,
                no_maps=no_maps,
                device=device,
                sampler=sampler,
                units=units,
                intrinsics=intrinsics,
                scoring=scoring,
                map_sigma=map_sigma,
            )
            return
        if data is None:
            raise St3dError(
                "give the test scans as --data DIR (MVTec layout) or as --good DIR --defective DIR"
            )
        if not data.is_dir():
            raise file_error(data, "dataset root not found")
        categories = list(dict.fromkeys(category)) if category else list_categories(data)
        for name in categories:
            if not (data / name).is_dir():
                raise file_error(data / name, "category folder not found")
        out_dir = out or workdir / "evaluation"
        maps_dir = None if no_maps else (maps or out_dir / "maps")

        from st3d_edge.evaluation.report import (
            format_defect_table,
            format_table,
            plot_pro_vs_limit,
            write_reports,
        )
        from st3d_edge.evaluation.runner import evaluate_category
        from st3d_edge.train.common import torch_threads
        from st3d_edge.train.distributed import resolve_device

        device_name = resolve_device(device.value)
        torch_threads()
        results, failed = [], []
        for name in categories:
            try:
                results.append(
                    evaluate_category(
                        data,
                        name,
                        workdir / name,
                        device=device_name,
                        maps_dir=maps_dir,
                        sampler=sampler.value if sampler else None,
                        scoring=scoring.value if scoring else None,
                        map_sigma=map_sigma,
                    )
                )
                if explain:
                    from st3d_edge.evaluation.explain import explain_line, explain_scans

                    for scan_name, shares in explain_scans(
                        data, name, workdir / name, scoring.value if scoring else None
                    ):
                        stdout.print(explain_line(scan_name, shares), highlight=False, markup=False)
            except St3dError as exc:
                print_error(f"{name}: {exc}")
                failed.append(name)
        if not results:
            raise St3dError(f"no category could be evaluated ({', '.join(failed)})")

        how = f"scoring {scoring.value}" if scoring else "each run's scoring"
        stdout.print(
            format_table(results, f"3D-ST ({how}) on {data} ({device_name})"), highlight=False, markup=False
        )
        if by_defect := format_defect_table(results):
            stdout.print(by_defect, highlight=False, markup=False)
        if maps_dir is not None:
            wrote(maps_dir, f"anomaly maps ({sum(r.scans for r in results)} TIFFs)")
        for path in write_reports(results, out_dir):
            wrote(path)
        wrote(plot_pro_vs_limit({"3D-ST": results}, out_dir / "pro_vs_limit.png"))
        if failed:
            print_error(f"{len(failed)} of {len(categories)} categories failed: {', '.join(failed)}")
            raise typer.Exit(1)


def _evaluate_folders(
    *,
    good,
    defective,
    masks,
    category,
    workdir,
    out,
    maps,
    no_maps,
    device,
    sampler,
    units,
    intrinsics,
    scoring,
    map_sigma,
) -> None:
    """``--good``/``--defective``/``--masks``: one run folder (``--category``) on flat folders."""
    from st3d_edge.console import out as stdout
    from st3d_edge.console import wrote
    from st3d_edge.errors import St3dError
    from st3d_edge.evaluation.report import format_table, write_reports
    from st3d_edge.evaluation.runner import evaluate_folders
    from st3d_edge.train.common import torch_threads
    from st3d_edge.train.distributed import resolve_device

    if not good or not defective:
        raise St3dError("--good and --defective go together (the image AUROC needs both kinds)")
    if not category or len(category) != 1:
        raise St3dError("with --good, name the one trained run to evaluate with --category NAME")
    out_dir = out or workdir / "evaluation"
    device_name = resolve_device(device.value)
    torch_threads()
    result = evaluate_folders(
        good,
        defective,
        category[0],
        workdir / category[0],
        masks=masks,
        units=units.value,
        intrinsics=intrinsics,
        device=device_name,
        maps_dir=None if no_maps else (maps or out_dir / "maps"),
        sampler=sampler.value if sampler else None,
        scoring=scoring.value if scoring else None,
        map_sigma=map_sigma,
    )
    stdout.print(
        format_table([result], f"3D-ST on {category[0]} ({device_name})"), highlight=False, markup=False
    )
    for path in write_reports([result], out_dir):
        wrote(path)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
