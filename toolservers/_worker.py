"""Child side of `_common.Worker`: import once, then run calls sent as length-prefixed pickles.

Kept free of fastmcp and mcp imports (seconds of startup), as are the modules it preloads.

Usage (by `Worker` only): python -m toolservers._worker MEMORY_BYTES MODULE[,MODULE...]
"""

from __future__ import annotations

import importlib
import os
import pickle
import resource
import struct
import sys


class WorkError(Exception):
    """Raised by code run in the worker when the input is at fault; the client sees the message."""


def main() -> None:
    # Run as __main__, this file's WorkError is a different class from the one preloaded modules
    # raise; catch theirs.
    from toolservers._worker import WorkError as RaisedWorkError

    memory_bytes, preload = int(sys.argv[1]), sys.argv[2]
    for module in preload.split(","):
        importlib.import_module(module)
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    requests, replies = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from libraries go to stderr, not into the reply pipe
    replies.write(b"R")
    replies.flush()
    while header := requests.read(4):
        (size,) = struct.unpack("!I", header)
        module, name, args = pickle.loads(requests.read(size))
        try:
            reply = ("ok", getattr(importlib.import_module(module), name)(*args))
        except RaisedWorkError as exc:
            reply = ("tool_error", str(exc))
        except MemoryError:
            reply = ("tool_error", "the computation ran out of memory; try a smaller problem.")
        except RecursionError:
            reply = ("tool_error", "the expression is nested too deeply; simplify it.")
        except Exception as exc:  # noqa: BLE001 - a library failing on this input is the input's answer
            reply = ("tool_error", f"{type(exc).__name__}: {exc}")
        data = pickle.dumps(reply)
        replies.write(struct.pack("!I", len(data)) + data)
        replies.flush()


if __name__ == "__main__":
    main()
