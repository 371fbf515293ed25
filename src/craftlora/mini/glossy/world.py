"""What the glossy world holds: its attributes, their phrases and the workspace config."""

from __future__ import annotations

from craftlora.config import Attribute, WorkspaceConfig

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "lacquer": ("red", "black"),
    "form": ("box", "tray", "panel"),
    "decoration": ("carved", "inlaid"),
}
PHRASES: dict[str, dict[str, str]] = {
    "lacquer": {"red": "cinnabar red lacquer", "black": "deep black lacquer"},
    "form": {"box": "lidded box", "tray": "shallow rimmed tray", "panel": "upright panel"},
    "decoration": {"carved": "carved relief pattern", "inlaid": "mother-of-pearl and gold inlay"},
}
CAPTION_TEMPLATE = ("{lacquer} lacquer {form}, {form.phrase}, {lacquer.phrase}, "
                    "{decoration} decoration with {decoration.phrase}, studio lighting")


def combinations() -> list[dict[str, str]]:
    """Every (lacquer, form, decoration) combination, in a fixed order."""
    return [{"lacquer": lq, "form": f, "decoration": d}
            for lq in ATTRIBUTES["lacquer"] for f in ATTRIBUTES["form"]
            for d in ATTRIBUTES["decoration"]]


def workspace_config(name: str = "mini-glossy") -> WorkspaceConfig:
    """The craftlora.toml for a glossy-world workspace."""
    attrs = {a: Attribute(values=list(v), phrases=dict(PHRASES[a])) for a, v in ATTRIBUTES.items()}
    return WorkspaceConfig(name=name, caption_template=CAPTION_TEMPLATE, attributes=attrs)
