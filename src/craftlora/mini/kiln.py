"""The mini-kiln world: vocabulary, phrases, historical constraints and a long-tailed joint law.

The joint distribution factorises as p(dynasty) · p(kiln | dynasty) · p(glaze | kiln, dynasty)
· p(type | kiln). A zero weight is a historical constraint (Guan and Ding are Song-only; Jian
makes black and brown wares; Longquan never fired a black glaze ...); ``valid_combinations``
lists every combination with a positive weight. ``default_counts`` turns the law into exact
integer counts, so the default dataset has the same long tail for every seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from craftlora.config import Attribute, WorkspaceConfig

ATTRIBUTES: dict[str, list[str]] = {
    "dynasty": ["Song", "Yuan"],
    "kiln": ["Ding", "Jun", "Longquan", "Jingdezhen", "Cizhou", "Jian", "Guan", "Yaozhou"],
    "glaze": [
        "white", "ivory white", "moon white", "celadon",
        "black", "brown", "sky blue", "qingbai",
    ],
    "type": [
        "bowl", "tea bowl", "dish", "plate", "vase",
        "meiping", "pot", "cup", "washer", "jar",
    ],
}

PHRASES: dict[str, dict[str, str]] = {
    "dynasty": {
        "Song": "slender restrained proportions with sparse decoration",
        "Yuan": "heavy robust proportions with dense decoration",
    },
    "kiln": {
        "Ding": "fine incised and moulded floral decoration with an unglazed copper-bound rim",
        "Jun": "thick undecorated glaze with purple splashes, glaze pooling above the foot",
        "Longquan": "carved lotus petals and an orange-red fired foot ring",
        "Jingdezhen": "incised combed scrolls or cobalt painted bands on a white body",
        "Cizhou": "bold brush-painted black leaves over white slip",
        "Jian": "undecorated thick glaze stopping short of a dark iron-rich foot",
        "Guan": "plain crackled glaze with a dark iron foot",
        "Yaozhou": "deeply carved and moulded dense floral relief",
    },
    "glaze": {
        "white": "a cool pure white glossy surface",
        "ivory white": "a warm creamy ivory tone with glaze tear marks",
        "moon white": "an opaque milky pale blue-grey surface",
        "celadon": "a translucent jade green surface pooling darker in recesses",
        "black": "a lustrous black surface with hare's-fur streaks",
        "brown": "a russet brown surface with oil-spot speckles",
        "sky blue": "an opalescent sky blue surface",
        "qingbai": "a glassy bluish-white translucent surface pooling blue-green in incisions",
    },
    "type": {
        "bowl": "a rounded deep bowl on a small foot ring, for serving food",
        "tea bowl": "a conical bowl with straight flaring walls and a small foot, for whisked tea",
        "dish": "a shallow dish with curved low walls and a wide foot, for serving",
        "plate": "a flat wide plate with a broad everted rim, for display and serving",
        "vase": "a pear-shaped vase with a long slender neck and flared mouth, for flowers",
        "meiping": "a tall meiping with a small mouth, broad high shoulders and tapering body",
        "pot": "a squat pear-shaped ewer pot with a spout and a loop handle, for pouring",
        "cup": "a small deep cup, sometimes on a tall stem, for drinking",
        "washer": "a shallow straight-walled brush washer with a flat base, for the scholar's desk",
        "jar": "a wide-mouthed jar with a short neck and broad shoulders, for storage",
    },
}

CAPTION_TEMPLATE = (
    "{dynasty} dynasty, {kiln} kiln produced, Chinese porcelain, {type}, {type.phrase}, "
    "{glaze} glaze with {glaze.phrase}"
)

DYNASTY_WEIGHTS: dict[str, float] = {"Song": 0.68, "Yuan": 0.32}

KILN_WEIGHTS: dict[str, dict[str, float]] = {
    "Song": {
        "Ding": 0.20, "Jun": 0.12, "Longquan": 0.20, "Jingdezhen": 0.14,
        "Cizhou": 0.10, "Jian": 0.10, "Guan": 0.06, "Yaozhou": 0.08,
    },
    "Yuan": {
        "Ding": 0.0, "Jun": 0.15, "Longquan": 0.25, "Jingdezhen": 0.35,
        "Cizhou": 0.20, "Jian": 0.02, "Guan": 0.0, "Yaozhou": 0.03,
    },
}

GLAZE_WEIGHTS: dict[str, dict[str, float]] = {
    "Ding": {"white": 0.55, "ivory white": 0.38, "black": 0.05, "brown": 0.02},
    "Jun": {"sky blue": 0.65, "moon white": 0.35},
    "Longquan": {"celadon": 0.88, "moon white": 0.12},
    "Jingdezhen": {"qingbai": 0.88, "white": 0.12},
    "Cizhou": {"white": 0.60, "black": 0.25, "brown": 0.15},
    "Jian": {"black": 0.85, "brown": 0.15},
    "Guan": {"moon white": 0.55, "celadon": 0.45},
    "Yaozhou": {"celadon": 0.94, "black": 0.06},
}

# Yuan Jingdezhen moves from qingbai to the egg-white (shufu) glaze under cobalt painting.
GLAZE_WEIGHTS_BY_DYNASTY: dict[tuple[str, str], dict[str, float]] = {
    ("Yuan", "Jingdezhen"): {"qingbai": 0.45, "white": 0.55},
}

TYPE_WEIGHTS: dict[str, dict[str, float]] = {
    "Ding": {
        "bowl": 0.30, "dish": 0.28, "plate": 0.15, "washer": 0.08, "vase": 0.05,
        "meiping": 0.04, "cup": 0.05, "pot": 0.03, "tea bowl": 0.02,
    },
    "Jun": {
        "bowl": 0.25, "dish": 0.12, "washer": 0.18, "vase": 0.10, "pot": 0.10,
        "jar": 0.10, "cup": 0.05, "plate": 0.05, "meiping": 0.05,
    },
    "Longquan": {
        "bowl": 0.25, "dish": 0.20, "plate": 0.12, "vase": 0.12, "washer": 0.08,
        "jar": 0.08, "cup": 0.06, "meiping": 0.05, "pot": 0.04,
    },
    "Jingdezhen": {
        "bowl": 0.18, "dish": 0.14, "plate": 0.10, "vase": 0.12, "meiping": 0.12,
        "jar": 0.10, "cup": 0.10, "pot": 0.08, "washer": 0.03, "tea bowl": 0.03,
    },
    "Cizhou": {
        "meiping": 0.28, "jar": 0.20, "vase": 0.15, "pot": 0.12, "bowl": 0.12,
        "dish": 0.05, "plate": 0.05, "tea bowl": 0.03,
    },
    "Jian": {"tea bowl": 0.85, "bowl": 0.08, "cup": 0.07},
    "Guan": {
        "washer": 0.25, "vase": 0.20, "dish": 0.20, "bowl": 0.15, "plate": 0.08,
        "meiping": 0.06, "jar": 0.06,
    },
    "Yaozhou": {
        "bowl": 0.33, "dish": 0.25, "plate": 0.10, "pot": 0.10, "vase": 0.08,
        "cup": 0.07, "jar": 0.04, "tea bowl": 0.03,
    },
}


class ComboError(ValueError):
    """A requested combination names an unknown value or breaks a historical constraint."""


def workspace_config(name: str = "mini-kiln") -> WorkspaceConfig:
    """The craftlora.toml for a mini-kiln workspace: attributes, phrases and caption template."""
    attrs = {
        a: Attribute(values=list(vals), phrases=dict(PHRASES[a])) for a, vals in ATTRIBUTES.items()
    }
    return WorkspaceConfig(name=name, caption_template=CAPTION_TEMPLATE, attributes=attrs)


def _glaze_weights(dynasty: str, kiln: str) -> dict[str, float]:
    return GLAZE_WEIGHTS_BY_DYNASTY.get((dynasty, kiln), GLAZE_WEIGHTS[kiln])


def probability(combo: Mapping[str, str]) -> float:
    """The joint probability of a combination under the default law (0 when forbidden)."""
    check_values(combo)
    d, k, g, t = (combo[a] for a in ATTRIBUTES)
    return (
        DYNASTY_WEIGHTS[d]
        * KILN_WEIGHTS[d].get(k, 0.0)
        * _glaze_weights(d, k).get(g, 0.0)
        * TYPE_WEIGHTS[k].get(t, 0.0)
    )


def check_values(combo: Mapping[str, str]) -> None:
    """Raise ComboError if an attribute is missing or a value is not in the vocabulary."""
    for attr, values in ATTRIBUTES.items():
        if attr not in combo:
            raise ComboError(f"missing attribute {attr!r}")
        if combo[attr] not in values:
            raise ComboError(f"unknown {attr} {combo[attr]!r}; known: {', '.join(values)}")
    extra = sorted(set(combo) - set(ATTRIBUTES))
    if extra:
        raise ComboError(f"unknown attributes {extra}")


def is_valid(combo: Mapping[str, str]) -> bool:
    """True when every value is known and the combination respects the historical constraints."""
    try:
        return probability(combo) > 0.0
    except ComboError:
        return False


def valid_combinations() -> list[dict[str, str]]:
    """Every combination allowed by the constraints, in vocabulary order."""
    out = []
    for values in itertools.product(*ATTRIBUTES.values()):
        combo = dict(zip(ATTRIBUTES, values, strict=True))
        if probability(combo) > 0.0:
            out.append(combo)
    return out


def default_counts(n: int) -> list[tuple[dict[str, str], int]]:
    """Exact integer counts summing to ``n`` by largest remainder over the joint law.

    Combinations whose share rounds to zero are left out, which is what makes the tail long.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    combos = valid_combinations()
    probs = [probability(c) for c in combos]
    total = sum(probs)
    quotas = [n * p / total for p in probs]
    counts = [int(q) for q in quotas]
    short = n - sum(counts)
    order = sorted(range(len(combos)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[:short]:
        counts[i] += 1
    return [(c, k) for c, k in zip(combos, counts, strict=True) if k > 0]
