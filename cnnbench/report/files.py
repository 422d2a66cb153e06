"""Files a report writes: whole or not at all, with the mode a plain write would give them."""

from __future__ import annotations

import io
import os
import stat
import tempfile
from pathlib import Path


def matplotlib_missing(flag: str) -> str | None:
    """Why ``flag`` cannot draw, or None: matplotlib is an optional extra."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return f"cnnbench: {flag} needs matplotlib; install it with: pip install 'cnnbench[plot]'"
    return None


def save_png(figure, path: Path) -> None:
    """A matplotlib figure written as a PNG, whole or not at all."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_atomically(path, buffer.getvalue())


def _umask() -> int:
    """The process umask. Reading it means setting it: 077 for that instant, so a file made meanwhile is private."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a part.

    The file gets the mode ``open(path, "w")`` would give it, the old file's or 0666 less the umask,
    not the owner-only 0600 of the temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
