"""`st3d-edge synth`: write synthetic scans in the MVTec 3D-AD layout."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from st3d_edge.commands._common import user_errors
from st3d_edge.data.names import CATEGORIES, DEFECTS

# Literal defaults mirror st3d_edge.data.synthetic.DEFAULT_COUNTS (a test checks they agree):
# importing that module here would load numpy for every `st3d-edge --help`.
Category = Enum("Category", {name: name for name in CATEGORIES}, type=str)  # type: ignore[misc]
DefectType = Enum("DefectType", {name: name for name in DEFECTS}, type=str)  # type: ignore[misc]


def register(app: typer.Typer) -> None:
    @app.command()
    def synth(
        out: Annotated[Path, typer.Option("--out", help="Dataset root to write (MVTec 3D-AD layout).")],
        categories: Annotated[
            list[Category] | None,
            typer.Option("--categories", help="Category to write; repeat for several. Default: all."),
        ] = None,
        defects: Annotated[
            list[DefectType] | None,
            typer.Option("--defects", help="Defect type for the test split; repeat. Default: all."),
        ] = None,
        train: Annotated[int, typer.Option("--train", min=0, help="Good training scans per category.")] = 20,
        validation: Annotated[
            int, typer.Option("--validation", min=0, help="Good validation scans per category.")
        ] = 5,
        test: Annotated[int, typer.Option("--test", min=0, help="Good test scans per category.")] = 5,
        test_defect: Annotated[
            int, typer.Option("--test-defect", min=0, help="Test scans per defect type and category.")
        ] = 2,
        size: Annotated[tuple[int, int], typer.Option("--size", help="Image height and width in pixels.")] = (
            800,
            800,
        ),
        seed: Annotated[int, typer.Option("--seed", help="Same seed, byte-identical files.")] = 0,
    ) -> None:
        """Write synthetic parts with defects and pixel-exact ground truth, as MVTec 3D-AD stores them."""
        with user_errors():
            from st3d_edge.console import out as stdout
            from st3d_edge.console import wrote
            from st3d_edge.data.synthetic import write_dataset

            names = [c.value for c in categories] if categories else list(CATEGORIES)
            kinds = [d.value for d in defects] if defects else list(DEFECTS)
            write_dataset(
                out,
                categories=names,
                train=train,
                validation=validation,
                test_good=test,
                test_defect=test_defect,
                size=(size[0], size[1]),
                seed=seed,
                progress=True,
                defects=kinds,
            )
            defective = test_defect * len(kinds)
            for name in names:
                stdout.print(
                    f"{name}: {train} train, {validation} validation, {test} good + {defective} defective "
                    f"test scans ({size[0]}x{size[1]}) in {out / name}",
                    highlight=False,
                )
                wrote(out / name, name)
