"""Load sqlite-utils without pandas (issue 10).

sqlite-utils imports pandas when it is installed (0.2 s of a server's start) only to map pandas
types in inserts, which this project never does. pandas is hidden for that one import, so the
server and the CLI never load it; it imports normally afterwards (the tables tool server uses it).
"""

from __future__ import annotations

import sys

if "sqlite_utils" not in sys.modules and "pandas" not in sys.modules:
    sys.modules["pandas"] = None  # type: ignore[assignment]  # makes `import pandas` fail
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]
