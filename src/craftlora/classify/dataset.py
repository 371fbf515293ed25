"""Labels of catalog records as index tensors per task, with clear reasons for what is left out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from craftlora.catalog.store import ImageRecord


@dataclass
class Labelled:
    """Records kept, their label index per task (-1 = unknown) and their combinations."""

    ids: list[int]
    labels: dict[str, np.ndarray]
    combos: list[tuple[str, ...]]
    origins: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: Sequence[int]) -> Labelled:
        rows = list(rows)
        return Labelled(
            ids=[self.ids[i] for i in rows],
            labels={t: v[rows] for t, v in self.labels.items()},
            combos=[self.combos[i] for i in rows],
            origins=[self.origins[i] for i in rows],
        )

    def concat(self, other: Labelled) -> Labelled:
        return Labelled(
            ids=self.ids + other.ids,
            labels={t: np.concatenate([v, other.labels[t]]) for t, v in self.labels.items()},
            combos=self.combos + other.combos,
            origins=self.origins + other.origins,
            skipped=self.skipped + other.skipped,
        )


def label_records(
    records: Sequence[ImageRecord],
    tasks: Mapping[str, Sequence[str]],
    *,
    cached: set[int] | None = None,
    require_all: bool = True,
) -> Labelled:
    """Index labels of ``records``; an image without a known value (or not decoded) is skipped."""
    index = {t: {v: i for i, v in enumerate(vals)} for t, vals in tasks.items()}
    ids, combos, origins, skipped = [], [], [], []
    cols: dict[str, list[int]] = {t: [] for t in tasks}
    for r in records:
        if cached is not None and r.id not in cached:
            skipped.append({"id": str(r.id), "path": r.path,
                            "reason": "image could not be decoded"})
            continue
        row = {t: index[t].get(r.attributes.get(t, ""), -1) for t in tasks}
        missing = [t for t, v in row.items() if v < 0]
        if missing and (require_all or len(missing) == len(tasks)):
            reasons = ", ".join(f"{t}={r.attributes.get(t)!r}" for t in missing)
            skipped.append({"id": str(r.id), "path": r.path,
                            "reason": f"no known label for {reasons}"})
            continue
        ids.append(r.id)
        origins.append(r.origin)
        combos.append(tuple(r.attributes.get(t, "") for t in tasks))
        for t, v in row.items():
            cols[t].append(v)
    return Labelled(ids, {t: np.asarray(v, dtype=np.int64) for t, v in cols.items()},
                    combos, origins, skipped)
