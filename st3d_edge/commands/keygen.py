"""`st3d-edge keygen`: an Ed25519 key pair for signing bundles (``export --sign``, ``infer --trust``).

Writes ``<name>.key`` (PKCS#8 PEM, unencrypted, mode 0600: keep it on the workstation, or on
the device for what the device itself changes) and ``<name>.pub`` (copy it to the devices'
trust folder or pass it to ``infer --trust``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from st3d_edge.commands._common import user_errors


def keygen(
    name: Annotated[Path, typer.Argument(help="Path and name of the pair: writes NAME.key and NAME.pub.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing pair.")] = False,
) -> None:
    """Make an Ed25519 key pair for signing bundles."""
    with user_errors():
        from st3d_edge.console import out, wrote
        from st3d_edge.errors import file_error
        from st3d_edge.runtime.signing import generate_keypair

        private, public = Path(f"{name}.key"), Path(f"{name}.pub")
        for path in (private, public):
            if path.exists() and not overwrite:
                raise file_error(path, "already exists; pass --overwrite to replace the pair")
        key_id = generate_keypair(private, public)
        out.print(f"key {key_id}", highlight=False)
        wrote(private, "private key (keep it secret)")
        wrote(public, "public key (for infer --trust)")


def register(app: typer.Typer) -> None:
    app.command("keygen")(keygen)
