"""Files that readers may open at any moment: written whole, or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to a temporary file beside `path`, set its mode, then
    rename it over `path`: a reader sees the old file or the new one, never
    half of one. The mode is explicit because a service's umask (0027 in the
    systemd unit) would otherwise hide the file from another user (for the
    Prometheus textfile, node_exporter's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename, or a crash may leave it empty
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
