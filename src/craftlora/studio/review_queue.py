"""One reviewer's pass through a queue of synthetic images: decide, go back, undo.

The queue is fixed when it is built (ids only), so a keypress costs one catalog write and one
read of the next image. Decisions go straight to the catalog; undo withdraws the newest
decision this reviewer made in this pass and shows that image again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from craftlora.catalog.schema import DECISIONS
from craftlora.qc.review import combination, note_of
from craftlora.studio.context import StudioContext

QC_FILTERS = ("any", "passed", "failed", "unchecked")
REAL_NEIGHBOURS = 4


class ReviewError(ValueError):
    """A review action that cannot be taken as asked."""


def queue_ids(ctx: StudioContext, set_name: str | None, qc: str = "any",
              reviewer: str | None = None) -> list[int]:
    """Synthetic image ids of a set filtered by QC status, oldest first; with ``reviewer``,
    only those this reviewer has not decided yet."""
    if qc not in QC_FILTERS:
        raise ReviewError(f"QC filter must be one of {QC_FILTERS}, not {qc!r}")
    sql = ("SELECT i.id, (SELECT count(*) FROM qc_results q WHERE q.image_id = i.id),"
           " (SELECT count(*) FROM qc_results q WHERE q.image_id = i.id AND q.passed = 0)"
           " FROM images i WHERE i.origin = 'synthetic'")
    params: list[Any] = []
    if set_name:
        sql += " AND i.set_name = ?"
        params.append(set_name)
    if reviewer is not None:
        sql += (" AND NOT EXISTS (SELECT 1 FROM reviews r"
                " WHERE r.image_id = i.id AND r.reviewer = ?)")
        params.append(reviewer)
    keep = {"any": lambda n, bad: True, "passed": lambda n, bad: n > 0 and bad == 0,
            "failed": lambda n, bad: bad > 0, "unchecked": lambda n, bad: n == 0}[qc]
    return [int(i) for i, n, bad in ctx.catalog.execute(sql + " ORDER BY i.id", params)
            if keep(n, bad)]


@dataclass
class ReviewPass:
    ids: list[int]
    reviewer: str
    position: int = 0
    history: list[tuple[int, int, int]] = field(default_factory=list)  # (pos, image, review)

    @property
    def done(self) -> bool:
        return self.position >= len(self.ids)

    @property
    def current(self) -> int | None:
        return None if self.done else self.ids[self.position]

    def decide(self, ctx: StudioContext, decision: str, reason: str = "", text: str = "") -> int:
        if decision not in DECISIONS:
            raise ReviewError(f"decision must be one of {DECISIONS}")
        if not self.reviewer.strip():
            raise ReviewError("enter a reviewer name first")
        image = self.current
        if image is None:
            raise ReviewError("the queue is done")
        if decision == "reject" and not reason:
            raise ReviewError("a rejection needs a reason")
        note = note_of(reason, text) if decision == "reject" else ""
        rid = ctx.catalog.add_review(image, decision, self.reviewer.strip(), note)
        self.history.append((self.position, image, rid))
        self.position += 1
        return rid

    def back(self) -> None:
        self.position = max(0, self.position - 1)

    def undo(self, ctx: StudioContext) -> int | None:
        """Withdraw the newest decision of this pass and show its image; None if none."""
        if not self.history:
            return None
        pos, image, rid = self.history.pop()
        ctx.tables.withdraw_review(rid, self.reviewer.strip())
        self.position = pos
        return image


def image_view(ctx: StudioContext, image_id: int) -> dict[str, Any]:
    """What the review room shows of one image: prompt, attributes, QC, provenance, and a few
    real images of the same combination."""
    cat = ctx.catalog
    rec = cat.get(image_id)
    qc = cat.qc_results([image_id]).get(image_id, [])
    attrs = rec.attributes
    real: list[int] = []
    if attrs:
        joins = " ".join(f"JOIN attributes a{k} ON a{k}.image_id = i.id AND a{k}.name = ?"
                         f" AND a{k}.value = ?" for k in range(len(attrs)))
        params = [x for kv in sorted(attrs.items()) for x in kv]
        rows = cat.execute(f"SELECT i.id FROM images i {joins} WHERE i.origin = 'real'"
                           f" ORDER BY i.id LIMIT {REAL_NEIGHBOURS}", params)
        real = [int(r[0]) for r in rows]
    return {
        "id": rec.id, "set": rec.set_name, "width": rec.width, "height": rec.height,
        "prompt": rec.provenance.get("prompt") or rec.caption or "",
        "attributes": attrs, "combination": combination(attrs),
        "qc": [{"check": q.check_name, "passed": q.passed, "score": q.score, "detail": q.detail}
               for q in qc],
        "provenance": rec.provenance, "real": real,
    }
