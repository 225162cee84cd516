"""Tar headers for the build context's archive, byte for byte as `tarfile` writes them, fast.

`tarfile` spends most of an archive of many small files building headers field by field (and
copying each `TarInfo`). The context's headers vary only in name, mode, size, type and link
target (owners 0/0 without names, mtime 0, GNU format), so they are packed here in one go. Any
entry outside that plain case (a name or link longer than 100 bytes, a size of 8 GiB or more) gets
`tarfile`'s own header, and so does everything if this interpreter's `tarfile` writes a sample
header differently (checked once), so the archive, and the image's content hash, never change.
"""

from __future__ import annotations

import functools
import tarfile

ENCODING = tarfile.ENCODING
ERRORS = "surrogateescape"
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_MAX_SIZE = 8**11  # 11 octal digits
_ZEROS_8 = b"0000000\x00"
_ZEROS_12 = b"00000000000\x00"
_TAIL = b"\x00" * (32 + 32 + 8 + 8 + 155)  # uname, gname, devmajor, devminor, prefix


def tarinfo(path: str, kind: str, mode: int, size: int, target: str) -> tarfile.TarInfo:
    """The `TarInfo` of one context entry (owners 0/0 without names, mtime 0)."""
    info = tarfile.TarInfo(path)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = mode
    if kind == "dir":
        info.type = tarfile.DIRTYPE
    elif kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = target
    else:
        info.type = tarfile.REGTYPE
        info.size = size
    return info


def header(path: str, kind: str, mode: int, size: int, target: str) -> bytes:
    """The header block(s) `tarfile` writes for this entry in GNU format."""
    if _fast_is_exact():
        fast = _fast_header(path, kind, mode, size, target)
        if fast is not None:
            return fast
    return tarinfo(path, kind, mode, size, target).tobuf(tarfile.GNU_FORMAT, ENCODING, ERRORS)


def _fast_header(path: str, kind: str, mode: int, size: int, target: str) -> bytes | None:
    if kind == "dir":
        kind_byte, size, target = tarfile.DIRTYPE, 0, ""
        if not path.endswith("/"):
            path += "/"
    elif kind == "symlink":
        kind_byte, size = tarfile.SYMTYPE, 0
    else:
        kind_byte, target = tarfile.REGTYPE, ""
    name = path.encode(ENCODING, ERRORS)
    link = target.encode(ENCODING, ERRORS)
    if len(name) > 100 or len(link) > 100 or size >= _MAX_SIZE:
        return None
    block = b"".join(
        (
            name.ljust(100, b"\x00"),
            b"%07o\x00" % (mode & 0o7777),
            _ZEROS_8,
            _ZEROS_8,
            b"%011o\x00" % size,
            _ZEROS_12,
            b"        ",
            kind_byte,
            link.ljust(100, b"\x00"),
            tarfile.GNU_MAGIC,
            _TAIL,
        )
    ).ljust(BLOCK, b"\x00")
    checksum = 256 + sum(block[:148]) + sum(block[156:])
    return block[:148] + b"%06o\x00" % checksum + block[155:]


@functools.cache
def _fast_is_exact() -> bool:
    """Whether the fast headers equal this interpreter's `tarfile` ones (checked once)."""
    samples = [
        ("dir/file.txt", "file", 0o644, 12345, ""),
        ("dir", "dir", 0o755, 0, ""),
        ("dir/link", "symlink", 0o777, 0, "file.txt"),
        ("x" * 100, "file", 0o755, 0, ""),
    ]
    for sample in samples:
        expected = tarinfo(*sample).tobuf(tarfile.GNU_FORMAT, ENCODING, ERRORS)
        if _fast_header(*sample) != expected:
            return False
    return True
