"""The System Usability Scale (Brooke 1996): ten items on a 1–5 scale, scored 0–100.

Odd items are positive statements (contribution = answer − 1), even items negative
(contribution = 5 − answer); the sum of contributions × 2.5 is the score.
"""

from __future__ import annotations

import statistics
from typing import Any

ITEMS = (
    "I think that I would like to use this system frequently.",
    "I found the system unnecessarily complex.",
    "I thought the system was easy to use.",
    "I think that I would need the support of a technical person to be able to use this "
    "system.",
    "I found the various functions in this system were well integrated.",
    "I thought there was too much inconsistency in this system.",
    "I would imagine that most people would learn to use this system very quickly.",
    "I found the system very cumbersome to use.",
    "I felt very confident using the system.",
    "I needed to learn a lot of things before I could get going with this system.",
)
SCALE = (1, 2, 3, 4, 5)  # 1 = strongly disagree … 5 = strongly agree


class SUSError(ValueError):
    """An incomplete or out-of-range questionnaire."""


def sus_score(answers: list[int]) -> float:
    """The 0–100 SUS score of ten answers on 1..5."""
    if len(answers) != len(ITEMS):
        raise SUSError(f"the SUS has {len(ITEMS)} items; got {len(answers)} answers")
    missing = [k + 1 for k, a in enumerate(answers) if a not in SCALE]
    if missing:
        raise SUSError(f"answer every item on 1..5 (items {missing} are not)")
    total = sum((a - 1) if k % 2 == 0 else (5 - a) for k, a in enumerate(answers))
    return total * 2.5


def sus_summary(scores: list[float]) -> dict[str, Any]:
    """n, mean and sample SD of SUS scores (SD is None below two participants)."""
    return {
        "n": len(scores),
        "mean": statistics.fmean(scores) if scores else None,
        "sd": statistics.stdev(scores) if len(scores) > 1 else None,
    }
