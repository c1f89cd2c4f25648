"""The zip container of ``torch.save`` files, parsed once from its central directory.

Scanning and loading both go through ``parse_zip``: the central directory is the one list of members, and every
member's local header must agree with it (name, method, sizes), start where the directory says, and not overlap
another member. Duplicate names, two ``data.pkl`` files, bytes before the first member or a directory that does
not end where the end record says refuse the file, so no two readers can see two different archives in it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import CorruptFileError
from .budget import shown

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_MAX_MEMBERS = 10_000
_STORED, _DEFLATED = 0, 8
_FLAG_ENCRYPTED, _FLAG_DESCRIPTOR = 0x1, 0x8


@dataclass(frozen=True)
class Member:
    name: str
    method: int
    crc: int
    compressed: int
    size: int
    header_offset: int
    data_offset: int = 0


@dataclass(frozen=True)
class ZipArchive:
    """Members by name, read from one parse of the directory; ``read`` returns a member's checked bytes."""

    data: bytes
    members: dict[str, Member]
    path: str

    def read(self, name: str) -> bytes:
        """A member's bytes as ``bytes`` (for small members: ``data.pkl``, ``byteorder``)."""
        return bytes(self.read_view(name))

    def read_view(self, name: str) -> memoryview | bytearray:
        """A member's bytes without a second copy: a stored member is a view of the file, a deflated one is
        inflated into one buffer of its declared size (pieces are copied in as they come, never joined)."""
        member = self.members[name]
        raw = memoryview(self.data)[member.data_offset: member.data_offset + member.compressed]
        if member.method != _DEFLATED:
            return raw
        out, at = bytearray(member.size), 0
        for piece in _inflated(raw, member, self.path):
            if at + len(piece) > member.size:
                raise CorruptFileError(self.path, f"zip member '{shown(member.name)}' is not the size its header "
                                                  "declares")
            out[at: at + len(piece)] = piece
            at += len(piece)
        return out

    def verify(self, member: Member) -> None:
        """Size and CRC of one member, inflated piece by piece (never held whole): part of the one parse."""
        raw = memoryview(self.data)[member.data_offset: member.data_offset + member.compressed]
        pieces = _inflated(raw, member, self.path) if member.method == _DEFLATED else [raw]
        size, crc = 0, 0
        for piece in pieces:
            size, crc = size + len(piece), zlib.crc32(piece, crc)
        if size != member.size:
            raise CorruptFileError(self.path, f"zip member '{shown(member.name)}' is not the size its header "
                                              "declares")
        if crc != member.crc:
            raise CorruptFileError(self.path, f"zip member '{shown(member.name)}' fails its CRC check")


_FEED = 64 * 1024
"""Compressed bytes handed to zlib at a time: its unconsumed tail (copied on every call) stays this small, so
inflating costs time linear in the member, whatever its ratio."""


def _inflated(raw: bytes | memoryview, member: Member, path: str, piece: int = 1 << 20) -> Iterator[bytes]:
    """A deflated member in pieces of at most ``piece`` bytes, stopping one byte past its declared size."""
    inflater, view, produced = zlib.decompressobj(-15), memoryview(raw), 0
    try:
        for start in range(0, len(view), _FEED):
            pending: bytes | memoryview = view[start: start + _FEED]
            while pending and produced <= member.size:
                out = inflater.decompress(pending, piece)
                pending = inflater.unconsumed_tail
                produced += len(out)
                yield out
                if not out:
                    break
            if produced > member.size or inflater.eof:
                break
        if produced <= member.size:
            yield inflater.flush()  # what zlib still holds for input it has fully consumed
    except zlib.error as e:
        raise CorruptFileError(path, f"zip member '{shown(member.name)}' is not valid deflate data") from e


def _end_record(data: bytes, path: str) -> tuple[int, int, int, int]:
    """(member count, directory size, directory offset, where the directory must end)."""
    at = data.rfind(_EOCD, max(0, len(data) - 22 - 65535))
    if at < 0 or at + 22 > len(data):
        raise CorruptFileError(path, "broken zip archive (no end of central directory)")
    _, _, _, count, size, offset, comment = struct.unpack_from("<HHHHIIH", data, at + 4)
    if at + 22 + comment != len(data):
        raise CorruptFileError(path, "broken zip archive (data after the end of the central directory)")
    ends_at = at
    locator = at - 20
    if locator >= 0 and data[locator: locator + 4] == _EOCD64_LOCATOR:
        (record,) = struct.unpack_from("<Q", data, locator + 8)
        if record + 56 > locator or data[record: record + 4] != _EOCD64:
            raise CorruptFileError(path, "broken zip archive (bad zip64 end record)")
        count, size, offset = struct.unpack_from("<QQQ", data, record + 32)
        ends_at = record
    if count > _MAX_MEMBERS:
        raise CorruptFileError(path, "zip archive has too many members")
    return count, size, offset, ends_at


def _zip64_sizes(extra: bytes, fields: list[int], path: str) -> list[int]:
    """Replace 0xFFFFFFFF fields (size, compressed, offset, in that order) from the zip64 extra block."""
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if at + 4 + length > len(extra):
            break
        if tag == 1:
            values = iter(struct.unpack_from(f"<{length // 8}Q", extra, at + 4))
            try:
                return [next(values) if field == 0xFFFFFFFF else field for field in fields]
            except StopIteration:
                break
        at += 4 + length
    if 0xFFFFFFFF in fields:
        raise CorruptFileError(path, "broken zip archive (zip64 sizes missing)")
    return fields


def _central_members(data: bytes, path: str) -> tuple[list[Member], int]:
    """The members the central directory lists, and where the directory starts (where member data must end)."""
    count, size, offset, ends_at = _end_record(data, path)
    if offset + size != ends_at:
        raise CorruptFileError(path, "broken zip archive (central directory is not where the end record says)")
    members: list[Member] = []
    at = offset
    for _ in range(count):
        if data[at: at + 4] != _CENTRAL or at + 46 > ends_at:
            raise CorruptFileError(path, "broken zip archive (bad central directory entry)")
        flags, method, _, _, crc, csize, usize, name_len, extra_len, comment_len = \
            struct.unpack_from("<HHHHIIIHHH", data, at + 8)
        (header_offset,) = struct.unpack_from("<I", data, at + 42)
        name_raw = data[at + 46: at + 46 + name_len]
        extra = data[at + 46 + name_len: at + 46 + name_len + extra_len]
        usize, csize, header_offset = _zip64_sizes(extra, [usize, csize, header_offset], path)
        if flags & _FLAG_ENCRYPTED or method not in (_STORED, _DEFLATED):
            raise CorruptFileError(path, "zip archive uses encryption or an unsupported compression")
        if method == _STORED and csize != usize:
            raise CorruptFileError(path, "broken zip archive (a stored member with two sizes)")
        name = name_raw.decode("utf-8", "replace")
        members.append(Member(name, method, crc, csize, usize, header_offset))
        at += 46 + name_len + extra_len + comment_len
    if at != ends_at:
        raise CorruptFileError(path, "broken zip archive (central directory size does not match its entries)")
    return members, offset


def _with_local_header(data: bytes, member: Member, path: str) -> Member:
    at = member.header_offset
    if data[at: at + 4] != _LOCAL or at + 30 > len(data):
        raise CorruptFileError(path, f"zip member '{shown(member.name)}' has no local header where the "
                                     "directory says")
    flags, method, _, _, crc, csize, usize, name_len, extra_len = struct.unpack_from("<HHHHIIIHH", data, at + 6)
    name = data[at + 30: at + 30 + name_len].decode("utf-8", "replace")
    sizes_agree = flags & _FLAG_DESCRIPTOR or (crc, csize, usize) == (member.crc, member.compressed, member.size) \
        or (csize, usize) == (0xFFFFFFFF, 0xFFFFFFFF)
    if name != member.name or method != member.method or not sizes_agree:
        raise CorruptFileError(path, f"zip member '{shown(member.name)}': local header disagrees with the "
                                     "central directory")
    start = at + 30 + name_len + extra_len
    return Member(member.name, member.method, member.crc, member.compressed, member.size, at, start)


def parse_zip(data: bytes, path: str) -> ZipArchive:
    """Parse and check the whole container; no member is decompressed here."""
    listed, directory = _central_members(data, path)
    members = [_with_local_header(data, member, path) for member in listed]
    by_name: dict[str, Member] = {}
    for member in members:
        if member.name in by_name:
            raise CorruptFileError(path, f"zip archive holds '{shown(member.name)}' twice")
        by_name[member.name] = member
    ordered = sorted(members, key=lambda m: m.header_offset)
    if ordered and ordered[0].header_offset != 0:
        raise CorruptFileError(path, "zip archive has unlisted bytes before its first member")
    for member, following in zip(ordered, [*ordered[1:], None]):
        limit = following.header_offset if following else directory
        if member.data_offset + member.compressed > limit:
            raise CorruptFileError(path, f"zip member '{shown(member.name)}' overlaps another part of the archive")
    total = sum(member.size for member in members)
    if total > 4 * len(data) + 1_000_000:  # torch stores members uncompressed; floats barely compress
        raise CorruptFileError(path, "zip archive expands far beyond its size (zip bomb?)")
    archive = ZipArchive(data, by_name, path)
    for member in members:
        archive.verify(member)
    return archive
