"""pgvector's `vector` type as the case bank's other code sees vectors: little-endian float32 bytes.

The SQLite bank stores vectors as float32 blobs, and the code shared by both banks (training
reads, ranking history, exports) joins and slices such bytes. Loading pgvector's binary form
(int16 dims, int16 unused, big-endian float4s) straight into those bytes lets that code run
unchanged, and a binary dumper writes a vector without formatting 384 floats as text.
"""

from __future__ import annotations

import struct

import numpy as np
import psycopg
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo

from memento_mcp.errors import StorageError


class Vector:
    """A vector to be written into a pgvector column (wraps a float32 array)."""

    __slots__ = ("values",)

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.float32).reshape(-1)


class _BinaryVectorLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> bytes:
        dims = struct.unpack_from(">H", data)[0]
        return np.frombuffer(data, dtype=">f4", count=dims, offset=4).astype("<f4").tobytes()


class _TextVectorLoader(Loader):
    format = Format.TEXT

    def load(self, data: Buffer) -> bytes:
        text = bytes(data).decode()
        return np.array(text.strip("[]").split(","), dtype=np.float32).tobytes()


def register_vector(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Teach one connection to read and write `vector` (called for every pooled connection)."""
    info = TypeInfo.fetch(conn, "vector")
    if info is None:
        raise StorageError(
            "the pgvector extension is not installed in this database: run"
            " CREATE EXTENSION vector (as a superuser), or install pgvector on the server"
        )
    oid = info.oid

    class _BinaryVectorDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: Vector) -> bytes:
            values = obj.values
            return struct.pack(">HH", len(values), 0) + values.astype(">f4").tobytes()

    _BinaryVectorDumper.oid = oid
    conn.adapters.register_dumper(Vector, _BinaryVectorDumper)
    conn.adapters.register_loader(oid, _BinaryVectorLoader)
    conn.adapters.register_loader(oid, _TextVectorLoader)
