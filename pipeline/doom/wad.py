"""A WAD file's directory: lumps (name, bytes) in order, to bytes and back. Pure: bytes in memory."""

from __future__ import annotations

from omg.wadio import Entry, Header

from ..contract import PipelineError

_HEADER_SIZE, _ENTRY_SIZE = len(Header().pack()), len(Entry().pack())


def wad_bytes(lumps: list[tuple[str, bytes]]) -> bytes:
    """A PWAD of the lumps in order: header, lump data, then the directory."""
    offset = _HEADER_SIZE
    entries = []
    for name, data in lumps:
        entries.append(Entry(ptr=offset if data else 0, size=len(data), name=name))
        offset += len(data)
    header = Header(type="PWAD", dir_len=len(entries), dir_ptr=offset)
    return b"".join([header.pack(), *(data for _, data in lumps), *(entry.pack() for entry in entries)])


def read_lumps(wad: bytes) -> list[tuple[str, bytes]]:
    """The (name, data) lumps of a WAD in directory order; PipelineError if it is not one."""
    if len(wad) < _HEADER_SIZE:
        raise PipelineError("not a WAD: shorter than its header")
    header = Header(bytes=wad[:_HEADER_SIZE])
    end = header.dir_ptr + header.dir_len * _ENTRY_SIZE
    if header.type not in ("IWAD", "PWAD") or end > len(wad):
        raise PipelineError("not a WAD: no IWAD/PWAD header, or a directory past its end")
    lumps = []
    for index in range(header.dir_len):
        at = header.dir_ptr + index * _ENTRY_SIZE
        entry = Entry(bytes=wad[at : at + _ENTRY_SIZE])
        if entry.ptr + entry.size > len(wad):
            raise PipelineError(f"not a WAD: lump {entry.name} runs past its end")
        lumps.append((entry.name, wad[entry.ptr : entry.ptr + entry.size]))
    return lumps
