"""Streaming gzip copies published atomically, and comparing a file with its copy.

Data is compressed block by block into a dotfile next to the target, fsynced, given
the source's times, and only then linked under the target name: a crash leaves no
half archive under a real name, and a link never replaces a file already there.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import secrets
import zlib
from pathlib import Path
from typing import BinaryIO, Final

from agent_pool.fsutil import fsync_dir

TEMP_PREFIX: Final = ".tmp-"
ARCHIVE_MODE: Final = 0o600  # session logs can hold secrets from the project
# Level 6 is zlib's usual trade: nearly the best ratio for JSON at a fraction of 9's time.
COMPRESS_LEVEL: Final = 6
_BLOCK: Final = 256 * 1024
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_TEMP_FLAGS: Final = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
)


def compress_to(source: BinaryIO, target: Path) -> int:
    """Compress what is left to read of `source` into a new file `target`; its size.

    `target` gets the times of the file behind `source`. Raises FileExistsError if
    `target` exists: nothing is ever overwritten.
    """
    info = os.fstat(source.fileno())
    temp = target.with_name(f"{TEMP_PREFIX}{target.name}-{secrets.token_hex(4)}")
    fd = os.open(temp, _TEMP_FLAGS, ARCHIVE_MODE)
    try:
        with os.fdopen(fd, "wb", closefd=False) as raw:
            # No file name and the source's mtime in the header: the archive holds
            # nothing the log itself did not.
            header_mtime = int(info.st_mtime)
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=COMPRESS_LEVEL,
                mtime=header_mtime,
            ) as packed:  # fmt: skip
                while block := source.read(_BLOCK):
                    packed.write(block)
        os.utime(fd, ns=(info.st_atime_ns, info.st_mtime_ns))
        os.fsync(fd)
        size = os.fstat(fd).st_size
        os.link(temp, target)
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    fsync_dir(target.parent)
    return size


def same_content(source: BinaryIO, archive: Path) -> bool:
    """Whether `archive` decompresses to exactly the bytes of `source` (read from 0).

    A damaged archive is not the same. Stops at the first difference. Raises OSError
    (ELOOP) if `archive` is a symlink.
    """
    source.seek(0)
    try:
        raw = os.fdopen(os.open(archive, _READ_FLAGS), "rb")
        with raw, gzip.GzipFile(fileobj=raw, mode="rb") as packed:
            while True:
                expected = source.read(_BLOCK)
                actual = _read_exactly(packed, len(expected) or 1)
                if expected != actual:
                    return False
                if not expected:
                    return True
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return False
    finally:
        source.seek(0)


def _read_exactly(stream: gzip.GzipFile, size: int) -> bytes:
    """Up to `size` bytes; fewer only at the end (GzipFile may return short reads)."""
    parts: list[bytes] = []
    wanted = size
    while wanted > 0:
        part = stream.read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)
