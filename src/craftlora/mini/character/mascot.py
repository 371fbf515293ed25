"""The mascot "Pip" drawn from primitives, in a pose, view, framing, expression and background.

Identity (fixed, what a LoRA must learn): a round peach head, blue eyes, a red bow at the upper
left of the head, a purple outfit with pale-yellow horizontal stripes. A distractor character
changes one or more of these. Everything else (pose, view, framing, expression, background)
varies with the prompt. Images are 64×64 uint8 RGB, drawn at 2× and box-filtered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from craftlora.character.prompts import AXES
from craftlora.mini import canvas

POSES, VIEWS, FRAMINGS = AXES["pose"], AXES["view"], AXES["framing"]
EXPRESSIONS, BACKGROUNDS = AXES["expression"], AXES["background"]

PALETTE: dict[str, tuple[float, float, float]] = {
    "peach": (0.98, 0.78, 0.60), "blue": (0.12, 0.30, 0.95), "red": (0.90, 0.10, 0.12),
    "purple": (0.50, 0.18, 0.68), "stripe": (1.00, 0.93, 0.45), "green": (0.30, 0.70, 0.30),
    "teal": (0.15, 0.58, 0.58), "grey": (0.55, 0.55, 0.55), "orange": (0.95, 0.55, 0.15),
    "yellow": (0.92, 0.86, 0.25), "dark": (0.10, 0.08, 0.10), "brown": (0.45, 0.28, 0.15),
    "leg": (0.27, 0.26, 0.26),
}
BACKGROUND_COLOURS = ("green", "teal", "grey", "orange", "yellow")


@dataclass(frozen=True)
class Identity:
    head: str = "round"  # round | square
    eyes: str = "blue"  # a PALETTE colour
    accessory: str = "bow-left"  # bow-left | bow-right | none
    outfit: str = "purple"
    pattern: str = "striped"  # striped | plain


MASCOT = Identity()
DISTRACTORS = (
    Identity(head="square", eyes="brown", accessory="none", outfit="green", pattern="plain"),
    Identity(head="round", eyes="brown", accessory="bow-right", outfit="orange",
             pattern="striped"),
    Identity(head="square", eyes="blue", accessory="none", outfit="purple", pattern="plain"),
)
FEATURES = ("round head", "blue eyes", "red bow upper left", "purple outfit", "striped outfit")


@dataclass(frozen=True)
class Scene:
    pose: str = "standing"
    view: str = "front view"
    framing: str = "full body"
    expression: str = "smile"
    background: str = "green background"

    def tags(self) -> list[str]:
        return [self.pose, self.view, self.framing, self.expression, self.background]


SCALE = {"full body": 1.0, "upper body": 1.5, "close-up": 2.1}
HEAD_Y = {"full body": 0.30, "upper body": 0.36, "close-up": 0.45}


def _rect(x, y, x0, y0, x1, y1):
    return (x >= x0) & (x < x1) & (y >= y0) & (y < y1)


def _limb(x, y, ax, ay, bx, by, w):
    """A thick segment from (ax, ay) to (bx, by)."""
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-6), 0, 1)
    return (x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2 <= w * w


def _background(scene: Scene, n: int, rng: np.random.Generator) -> np.ndarray:
    y, x = canvas.grid(n)
    words = scene.background.split()
    colour = next(w for w in words if w in PALETTE)
    base = np.array(PALETTE[colour], np.float32) * rng.uniform(0.9, 1.05)
    f = rng.uniform(4, 6) / n * 2 * np.pi
    ph = rng.uniform(0, 2 * np.pi)
    if "striped" in words:
        pat = np.sin(x * f + ph) > 0
    elif "dotted" in words:
        pat = (np.sin(x * f * 1.4 + ph) * np.sin(y * f * 1.4)) > 0.6
    elif "checked" in words:
        pat = (np.sin(x * f + ph) > 0) ^ (np.sin(y * f) > 0)
    else:
        pat = np.zeros((n, n), bool)
    tone = np.where(pat, 0.72, 1.0)[..., None]
    return np.broadcast_to(base * tone, (n, n, 3)).astype(np.float32).copy()


def render(scene: Scene, identity: Identity = MASCOT, *, seed: int = 0, size: int = 64
           ) -> np.ndarray:
    """The character in ``scene`` as a uint8 image (deterministic in ``seed``)."""
    rng = np.random.default_rng([seed, 0xC4A2])
    n = size * canvas.SUPERSAMPLE
    y, x = canvas.grid(n)
    img = _background(scene, n, rng)
    s = SCALE[scene.framing] * n * rng.uniform(0.95, 1.05)
    cx = n * (0.5 + rng.uniform(-0.06, 0.06))
    cy = n * HEAD_Y[scene.framing] + (-0.08 * n if scene.pose == "jumping" else 0.0)
    if scene.pose == "sitting" and scene.framing == "full body":
        cy += 0.08 * n
    r = 0.13 * s
    body_top, body_h, body_w = cy + 0.85 * r, 0.24 * s, 0.12 * s

    def paint(mask, colour, shade=1.0):
        nonlocal img
        rgb = np.array(PALETTE[colour], np.float32) * shade
        img = np.where(mask[..., None], rgb, img)

    # legs
    leg_y1 = body_top + body_h + (0.10 * s if scene.pose == "sitting" else 0.2 * s)
    spread = 0.09 * s if scene.pose == "jumping" else 0.05 * s
    for side in (-1, 1):
        if scene.pose == "sitting":
            leg = _limb(x, y, cx + side * 0.05 * s, body_top + body_h, cx + side * 0.16 * s,
                        leg_y1, 0.035 * s)
        else:
            leg = _limb(x, y, cx + side * 0.05 * s, body_top + body_h, cx + side * spread,
                        leg_y1, 0.035 * s)
        paint(leg, "leg")
    # arms: sleeves in the outfit colour, peach hands
    for side in (-1, 1):
        up = scene.pose == "arms up" or (scene.pose == "waving" and side == 1)
        sx, sy = cx + side * body_w * 0.95, body_top + 0.04 * s
        hx = cx + side * (0.24 * s if up else 0.17 * s)
        hy = sy - 0.2 * s if up else sy + 0.2 * s
        paint(_limb(x, y, sx, sy, hx, hy, 0.032 * s), identity.outfit, 0.9)
        paint((x - hx) ** 2 + (y - hy) ** 2 <= (0.04 * s) ** 2, "peach")
    # body (a trapezoid) with the outfit pattern
    t = np.clip((y - body_top) / body_h, 0, 1)
    body = (y >= body_top) & (y < body_top + body_h) & (np.abs(x - cx) <= body_w * (0.8 + 0.4 * t))
    paint(body, identity.outfit)
    if identity.pattern == "striped":
        period = body_h / 2.6
        stripe = body & (((y - body_top) % period) > period * 0.55)
        paint(stripe, "stripe")
    # head
    if identity.head == "round":
        head = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    else:
        head = _rect(x, y, cx - r * 0.9, cy - r * 0.9, cx + r * 0.9, cy + r * 0.9)
    paint(head, "peach")
    shift = {"front view": 0.0, "from left": -0.35, "from right": 0.35}[scene.view] * r
    gap = 0.36 * r if scene.view == "front view" else 0.3 * r
    er = 0.19 * r
    for side in (-1, 1):
        ex, ey = cx + shift + side * gap, cy - 0.05 * r
        paint((x - ex) ** 2 + (y - ey) ** 2 <= er * er, identity.eyes)
    my, mx = cy + 0.45 * r, cx + shift
    if scene.expression == "smile":
        d = np.sqrt((x - mx) ** 2 + (y - (my - 0.25 * r)) ** 2)
        mouth = (np.abs(d - 0.3 * r) < 0.06 * r) & (y > my - 0.1 * r)
    elif scene.expression == "open mouth":
        mouth = ((x - mx) / (0.18 * r)) ** 2 + ((y - my) / (0.12 * r)) ** 2 <= 1
    else:
        mouth = _rect(x, y, mx - 0.2 * r, my - 0.04 * r, mx + 0.2 * r, my + 0.04 * r)
    paint(mouth, "dark")
    if identity.accessory != "none":
        side = -1 if identity.accessory == "bow-left" else 1
        bx, by, b = cx + side * 0.62 * r, cy - 0.8 * r, 0.4 * r
        left = _tri(x, y, bx, by, bx - b, by - 0.7 * b, bx - b, by + 0.7 * b)
        right = _tri(x, y, bx, by, bx + b, by - 0.7 * b, bx + b, by + 0.7 * b)
        paint(left | right | ((x - bx) ** 2 + (y - by) ** 2 <= (0.25 * b) ** 2), "red")
    gain = np.full(3, rng.uniform(0.95, 1.05), np.float32)
    return canvas.finish(img, rng, gain)


def _tri(x, y, ax, ay, bx, by, qx, qy):
    def side(px, py, qx_, qy_):
        return (x - qx_) * (py - qy_) - (px - qx_) * (y - qy_)

    d1, d2, d3 = side(ax, ay, bx, by), side(bx, by, qx, qy), side(qx, qy, ax, ay)
    neg = (d1 < 0) | (d2 < 0) | (d3 < 0)
    pos = (d1 > 0) | (d2 > 0) | (d3 > 0)
    return ~(neg & pos)


def off_model(rng: np.random.Generator) -> Identity:
    """The mascot with one identity feature replaced by a distractor's (generator drift)."""
    d = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
    field = ["head", "eyes", "accessory", "outfit", "pattern"][int(rng.integers(5))]
    value = getattr(d, field)
    if value == getattr(MASCOT, field):
        value = {"head": "square", "eyes": "brown", "accessory": "none", "outfit": "green",
                 "pattern": "plain"}[field]
    return replace(MASCOT, **{field: value})
