"""A file written whole or not at all: the one way framescope replaces a file it writes.

The data goes into a temporary file in the same folder, which is renamed
over the target: a reader sees the old file or the new one, never half of
one, and a failed write leaves no temporary file behind. A symbolic link at
the target is replaced by the file, never written through.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["replace_file"]


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed over it (OSError if not)."""
    import tempfile  # noqa: PLC0415 - loaded on first use (cold start)

    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o666 & ~_umask())  # as open() would make it, not mkstemp's 0600
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    """The process's file mode creation mask.

    Read from ``/proc/self/status`` where there is one: setting it to read it
    back would change it for every thread of the process for a moment.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
