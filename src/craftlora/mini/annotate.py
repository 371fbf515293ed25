"""Structured annotations of rendered vessels: a description plus objects with positions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from craftlora.mini.kiln import PHRASES

_FOOT = {
    "Ding": "a fine ivory body at the foot and an unglazed metal-bound rim",
    "Jun": "thick glaze pooling above a buff foot",
    "Longquan": "an orange-red fired foot ring",
    "Jingdezhen": "a white sugary foot with an orange flush",
    "Cizhou": "a grey-buff stoneware foot",
    "Jian": "glaze stopping short of a dark iron-rich foot in a thick bead",
    "Guan": "a dark iron foot",
    "Yaozhou": "a grey-ochre foot",
}

_TECHNIQUE = {
    "incised": "finely incised floral scrolls",
    "carved": "carved lotus-petal relief",
    "printed": "a moulded dotted pattern",
    "painted": "brush-painted bands and leaves",
    "none": "no decoration",
}


def _position(facts: Mapping[str, Any]) -> list[str]:
    cx, cy, fill, tilt = facts["cx"], facts["cy"], facts["fill"], facts["tilt"]
    horiz = "left of centre" if cx < 0.42 else "right of centre" if cx > 0.58 else "centred"
    vert = "high in the frame" if cy < 0.42 else "low in the frame" if cy > 0.58 else "mid-height"
    size = "filling most of the frame" if fill > 0.75 else "medium" if fill > 0.62 else "small"
    pos = [horiz, vert, size, "standing on the floor", "seen slightly from above"]
    if abs(tilt) > 3:
        pos.append(f"tilted slightly to the {'right' if tilt > 0 else 'left'}")
    return pos


def _light(facts: Mapping[str, Any]) -> str:
    lx = facts["light"][0]
    side = "the left" if lx < -0.25 else "the right" if lx > 0.25 else "the front"
    temp = "warm" if facts["warmth"] > 0.33 else "cool" if facts["warmth"] < -0.33 else "neutral"
    return f"{temp} light from above and {side}"


def annotation(combo: Mapping[str, str], facts: Mapping[str, Any]) -> dict[str, Any]:
    """The per-image JSON: a description and one object per visible thing."""
    d, k, g, t = combo["dynasty"], combo["kiln"], combo["glaze"], combo["type"]
    deco = _TECHNIQUE[facts["technique"]]
    effects = ", ".join(facts["effects"]) or "an even surface"
    parts = [p for p, on in (("a spout", facts["spout"]), ("a loop handle", facts["handle"]),
                             ("two lug handles", facts["lugs"])) if on]
    vessel_desc = (
        f"{PHRASES['type'][t]}; {g} glaze with {PHRASES['glaze'][g]} ({effects}); {deco}; "
        f"{_FOOT[k]}; {PHRASES['dynasty'][d]}"
    )
    if parts:
        vessel_desc += "; with " + " and ".join(parts)
    return {
        "description": (
            f"A {d} dynasty {k} kiln {g} glazed {t} with {deco}, standing on a "
            f"{facts['floor']} floor before a {facts['wall']} wall in {_light(facts)}."
        ),
        "objects": [
            {"name": t, "description": vessel_desc, "position": _position(facts)},
            {
                "name": "background",
                "description": f"a plain {facts['wall']} wall over a {facts['floor']} floor",
                "position": ["behind the vessel", "fills the frame"],
            },
            {
                "name": "shadow",
                "description": f"a soft cast shadow from {_light(facts)}",
                "position": ["on the floor", "under the vessel"],
            },
        ],
    }
