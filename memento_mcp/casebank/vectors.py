"""Case embeddings in bulk, for the in-memory index and the scorer."""

from __future__ import annotations

import numpy as np

from memento_mcp.casebank.connection import Connection, from_blob


class Vectors(Connection):
    def vectors_after(self, after_case_id: int) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Case ids, namespaces and embeddings of the cases with id > after_case_id."""
        rows = self._query(
            "SELECT cases.id, cases.namespace, embeddings.vector FROM cases"
            " JOIN embeddings ON embeddings.case_id = cases.id"
            " WHERE cases.id > ? ORDER BY cases.id",
            (after_case_id,),
        )
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(row[2] for row in rows), dtype=np.float32)
        return ids, [row[1] for row in rows], vectors.reshape(len(rows), -1 if rows else 0)

    def case_count(self) -> tuple[int, int]:
        """(count, max id) of all cases: what the in-memory index should hold."""
        row = self._query("SELECT count(*), coalesce(max(id), 0) FROM cases")
        return int(row[0][0]), int(row[0][1])

    def case_vectors(self, case_ids: list[int]) -> np.ndarray:
        marks = ",".join("?" * len(case_ids))
        rows = dict(
            self._query(
                f"SELECT case_id, vector FROM embeddings WHERE case_id IN ({marks})", case_ids
            )
        )
        return np.stack([from_blob(rows[case_id]) for case_id in case_ids])
