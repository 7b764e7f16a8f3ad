"""Copy a pretrained teacher into the package (st3d_edge/teachers/<preset>/), weights only.

    python scripts/ship_teacher.py RUN_DIR --command "st3d-edge pretrain --preset cpu"

Writes ``teacher.pt`` (the best checkpoint's network weights, without the decoder or the
optimizer), ``config.json`` (the run's config) and ``provenance.json`` (the command that made
it, its best validation loss and epoch, the epochs run and their seconds).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    from st3d_edge.io_utils import write_json_atomic
    from st3d_edge.teachers import SHIPPED
    from st3d_edge.train.checkpoint import load_checkpoint, save_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--preset", default="cpu", choices=sorted(SHIPPED))
    parser.add_argument("--command", required=True, help="the command line that pretrained the run")
    args = parser.parse_args()

    best = load_checkpoint(args.run_dir / "teacher.pt")
    config = json.loads((args.run_dir / "config.json").read_text())
    metrics = [json.loads(line) for line in (args.run_dir / "metrics.jsonl").read_text().splitlines()]
    target = SHIPPED[args.preset]
    target.mkdir(parents=True, exist_ok=True)
    save_checkpoint(target / "teacher.pt", {"model": best["model"], "epoch": best["epoch"]})
    config.get("job", {}).pop("modelnet", None)
    write_json_atomic(target / "config.json", config)
    write_json_atomic(
        target / "provenance.json",
        {
            "command": args.command,
            "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"],
            "epochs_run": len(metrics),
            "seconds": round(sum(m["seconds"] for m in metrics), 1),
            "s": best.get("s"),
            "s_by_kind": json.loads((args.run_dir / "scale.json").read_text()).get("s_by_kind"),
            "effective_rank": json.loads((args.run_dir / "diagnostics.json").read_text())["effective_rank"],
            "val_loss_by_epoch": [round(m["val_loss"], 5) for m in metrics],
        },
    )
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
