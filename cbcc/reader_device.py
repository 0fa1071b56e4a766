"""``cbcc reader flash | deploy``: MicroPython onto an ESP32, then the compiled firmware onto it.

Registered on the ``reader`` sub-app by :func:`register`; the work is in
:mod:`cbcc.device`. ``cbcc reader provision --flash`` then copies the reader's own
files (configuration, keys, certificates). Only a connected ESP32 exercises the copying and
flashing; the tests check the image check, the compile and the commands.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from cbcc.common import cli_errors, stdout_console
from messages import _

Port = Annotated[str, typer.Option("--port", help="The ESP32's serial port, e.g. /dev/ttyUSB0.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the commands instead of running them.")]


def register(reader_app: typer.Typer) -> None:
    @reader_app.command("flash")
    def flash(
        port: Port,
        image: Annotated[
            Path,
            typer.Option(
                "--image",
                help="MicroPython .bin for ESP32 (e.g. the pinned ESP32_GENERIC-20250911-v1.26.1.bin).",
            ),
        ],
        sha256: Annotated[str | None, typer.Option("--sha256", help="Expected SHA-256 of the image.")] = None,
        keep: Annotated[bool, typer.Option("--no-erase", help="Do not erase the flash first.")] = False,
        dry_run: DryRun = False,
    ) -> None:
        """Write MicroPython to the ESP32 with esptool (the image is checked before anything is written)."""
        with cli_errors():
            from cbcc import device as rd

            digest = rd.check_image(image, sha256)
            cmds = rd.esptool_commands(port, image, erase=not keep)
            if dry_run:
                stdout_console().print("\n".join(shlex.join(c) for c in cmds), markup=False)
                return
            rd.run_all(cmds, "esptool")
            stdout_console().print(
                _(
                    "[green]flashed[/green] {name} (SHA-256 {digest}…) to {port}",
                    name=image.name,
                    digest=digest[:16],
                    port=port,
                )
            )

    @reader_app.command("deploy")
    def deploy(
        port: Port,
        out: Annotated[Path | None, typer.Option("--out", help="Keep the compiled files here.")] = None,
        dry_run: DryRun = False,
    ) -> None:
        """Compile the firmware with mpy-cross -march=xtensawin and copy it to the reader with mpremote."""
        with cli_errors():
            from cbcc import device as rd

            with tempfile.TemporaryDirectory(prefix="cbcc-fw-") as tmp:
                compiled = rd.compile_firmware(out or Path(tmp))
                cmds = rd.mpremote_copy_commands(port, compiled)
                if dry_run:
                    stdout_console().print("\n".join(shlex.join(c) for c in cmds), markup=False)
                    return
                printed = rd.run_all(cmds, "mpremote")
                rd.check_deployed(compiled, printed)
            stdout_console().print(
                _("[green]deployed[/green] {n} files to {port}", n=len(compiled.files), port=port)
            )
