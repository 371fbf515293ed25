"""Draw one mini-kiln vessel: revolved silhouette, shading, glaze, decoration and nuisances.

``render_vessel`` is the public entry point; ``render_scene`` also returns what the
annotation writer needs to describe the picture (placement, light, background, decoration).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from craftlora.mini import canvas, surface
from craftlora.mini.kiln import check_values
from craftlora.mini.shapes import Profile, make_profile


def render_vessel(
    combo: Mapping[str, str], rng: np.random.Generator, size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """One image (uint8 size×size×3) of the combination and its exact vessel silhouette mask."""
    img, mask, _ = render_scene(combo, rng, size)
    return img, mask


def _segment(x, y, p0, p1, width0: float, width1: float) -> np.ndarray:
    """Mask of a tapered thick segment from p0 to p1."""
    d = np.array(p1) - np.array(p0)
    L2 = float(d @ d) or 1.0
    h = np.clip(((x - p0[0]) * d[0] + (y - p0[1]) * d[1]) / L2, 0.0, 1.0)
    dist = np.hypot(x - p0[0] - h * d[0], y - p0[1] - h * d[1])
    return dist <= width0 + (width1 - width0) * h


def _attachments(prof: Profile, u, v, vtop: float, H: float, R: float, side: float):
    """Spout, handle and lug masks (in the vessel's own frame)."""
    mask = np.zeros(u.shape, dtype=bool)
    if prof.spout:
        t0 = 0.45
        x0 = side * R * float(prof.r(np.float32(t0))) * 0.9
        p0 = (x0, vtop + t0 * H)
        p1 = (x0 + side * 0.55 * R, vtop + 0.05 * H)
        mask |= _segment(u, v, p0, p1, 0.11 * R, 0.05 * R)
    if prof.handle:
        th = 0.35
        cxh = -side * R * (float(prof.r(np.float32(th))) + 0.08)
        d = np.hypot((u - cxh) / 1.0, (v - (vtop + th * H)) / 1.5)
        mask |= (d > 0.17 * R) & (d < 0.26 * R) & (np.sign(u - cxh) != side)
    if prof.lugs:
        tl = 0.2
        xl = R * float(prof.r(np.float32(tl)))
        for sgn in (-1.0, 1.0):
            mask |= np.hypot(u - sgn * xl, v - (vtop + tl * H)) < 0.1 * R
    return mask


def _layout(prof: Profile, rng: np.random.Generator, n: int) -> dict[str, float]:
    """Scale, position, view elevation and tilt (all nuisance factors)."""
    e = rng.uniform(0.24, 0.32) if prof.is_open else rng.uniform(0.14, 0.22)
    r0, r1 = float(prof.radius[0]), float(prof.radius[-1])
    side_l = 0.35 if prof.handle else 0.0
    side_r = 0.6 if prof.spout else 0.0
    tot_h = 2 * prof.aspect + e * (r0 + r1)
    tot_w = 2 + side_l + side_r + 0.1 * prof.lugs
    fill = rng.uniform(0.62, 0.85)
    R = fill * n / max(tot_h, tot_w)
    left = rng.uniform(0.15, 0.85) * (n - tot_w * R)
    top = rng.uniform(0.2, 0.8) * (n - tot_h * R)
    return {
        "e": e, "R": R, "H": 2 * prof.aspect * R, "fill": fill,
        "cx": left + (1 + side_l) * R, "vtop": top + e * r0 * R,
        "tilt": float(np.deg2rad(rng.uniform(-4.0, 4.0))), "side": 1.0,
    }


def render_scene(
    combo: Mapping[str, str], rng: np.random.Generator, size: int = 64
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Render a combination; returns (image uint8, silhouette bool, facts for the annotation)."""
    check_values(combo)
    dynasty, kiln, glaze, kind = (combo[a] for a in ("dynasty", "kiln", "glaze", "type"))
    n = size * canvas.SUPERSAMPLE
    prof = make_profile(kind, dynasty, rng)
    lay = _layout(prof, rng, n)
    if rng.uniform() < 0.5:  # mirror spout / handle sides
        lay["side"] = -1.0
        lay["cx"] = n - lay["cx"]
    R, H, e, vtop, cx = lay["R"], lay["H"], lay["e"], lay["vtop"], lay["cx"]
    vbot = vtop + H
    r0, r1 = float(prof.radius[0]), float(prof.radius[-1])

    # Frame of the vessel: rotate the raster by -tilt about the vessel centre.
    y, x = canvas.grid(n)
    cy = (vtop + vbot) / 2
    c, s = np.cos(lay["tilt"]), np.sin(lay["tilt"])
    u = c * (x - cx) + s * (y - cy)
    v = -s * (x - cx) + c * (y - cy) + cy
    t = (v - vtop) / H
    rt = R * prof.r(t)
    at, bt = u / (R * r0), (v - vtop) / (e * R * r0)
    in_top = at**2 + bt**2 <= 1.0
    in_bot = (v >= vbot) & ((u / (R * r1)) ** 2 + ((v - vbot) / (e * R * r1)) ** 2 <= 1.0)
    body = (t >= 0) & (t <= 1) & (np.abs(u) <= rt)
    extra = _attachments(prof, u, v, vtop, H, R, lay["side"]) & ~body & ~in_top
    sil = body | in_top | in_bot | extra

    # Light: direction (x right, y down, z to the viewer), ambient, exposure and tint.
    light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.8, -0.1), rng.uniform(0.4, 1.0)])
    light /= np.linalg.norm(light)
    amb = rng.uniform(0.25, 0.45)
    gain, warmth = canvas.light_colour(rng)

    # Background, floor and cast shadow.
    horizon = max(0.0, vbot - rng.uniform(0.02, 0.14) * n)
    bg, bg_cols = canvas.backdrop(rng, n, horizon)
    shadow = canvas.soft_ellipse(
        n, cx - light[0] * 0.8 * R, vbot + 0.02 * R, R * r1 * 1.6, e * R * r1 * 1.5 + 0.08 * R
    )
    bg *= (1.0 - 0.45 * shadow)[..., None]

    idx = np.flatnonzero(sil)
    pu, pt = u.ravel()[idx], np.clip(t.ravel()[idx], 0.0, 1.0)
    pa, pb = at.ravel()[idx], bt.ravel()[idx]
    top_px = in_top.ravel()[idx]
    ext_px = extra.ravel()[idx]
    rho = np.maximum(R * prof.r(pt), 1e-3)

    # Normals of the revolved surface: (sin φ, -dr/dy, cos φ), normalised.
    nx = np.clip(pu / rho, -1.0, 1.0)
    ny = -prof.slope(pt) * R / H
    nz = np.sqrt(1.0 - nx**2)
    nx = np.where(ext_px, 0.6 * lay["side"] * np.sign(pu + 1e-6), nx)
    nz = np.where(ext_px, 0.8, nz)
    norm = np.sqrt(nx**2 + ny**2 + nz**2)
    nx, ny, nz = nx / norm, ny / norm, nz / norm
    diffuse = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0.0, 1.0)
    half = light + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    g = surface.GLAZES[glaze]
    p_exp = 8 + 40 * g.gloss
    spec = np.clip(nx * half[0] + ny * half[1] + nz * half[2], 0, 1) ** p_exp
    shade = amb + (1 - amb) * diffuse

    # Interior of open forms / mouth of closed forms.
    rad = np.sqrt(pa**2 + pb**2)
    rim_w = 0.1 if prof.is_open else 0.3
    inside = top_px & (rad <= 1.0 - rim_w)
    rim = top_px & ~inside
    if prof.is_open:
        lit = np.clip(0.62 + 0.22 * pb - 0.35 * light[0] * pa, 0.05, 1.0)
        shade = np.where(inside, amb + (1 - amb) * lit, shade)
        spot = (pa + 0.4 * light[0]) ** 2 + (pb + 0.45) ** 2
        hot = np.exp(-spot / (0.02 + 0.1 * (1 - g.gloss)))
        spec = np.where(inside, hot, spec)
    else:
        shade = np.where(inside, 0.12, shade)
        spec = np.where(inside, 0.0, spec)
    shade = np.where(rim, amb + (1 - amb) * 0.9, shade)

    # Surface coordinates: around and down the outside, around and out from the inside centre.
    sa = np.where(inside, np.arctan2(pb, pa) / 2, np.arcsin(nx))
    ss = np.where(inside, 1.0 - rad, pt)

    albedo, pool = surface.glaze_albedo(glaze, kiln, rng, idx.size)
    facts = _glaze_effects(glaze, kiln, albedo, pool, sa, ss, rng)
    technique = surface.pick_technique(kiln, dynasty, rng)
    lines, relief = surface.decoration(technique, sa, ss, rng, dense=dynasty == "Yuan")
    vis = 1.0 - 0.7 * g.opacity
    if technique == "painted":
        dark_glaze = glaze in ("black", "brown")
        paint = np.array((0.75, 0.62, 0.45) if dark_glaze else surface.PAINT[kiln], np.float32)
        albedo += (paint - albedo) * (0.9 * lines)[:, None]
    else:
        albedo *= (1.0 + 0.18 * vis * relief)[:, None]
        albedo += (pool - albedo) * (0.8 * vis * lines)[:, None]

    # Foot: unglazed body below the glaze line (Jian glaze stops high with a thick bead).
    kspec = surface.KILNS[kiln]
    glaze_end = 1.0 - prof.foot
    if kiln == "Jian":
        glaze_end = rng.uniform(0.72, 0.85) + 0.03 * np.sin(sa * 7 + rng.uniform(0, 6))
        bead = (pt > glaze_end - 0.05) & (pt <= glaze_end)
        albedo[bead] *= 0.6
    if kiln == "Jun":
        thick = (pt > glaze_end - 0.08) & (pt <= glaze_end) & ~top_px
        albedo[thick] += (pool - albedo[thick]) * 0.7
    foot = ~top_px & ~ext_px & (pt > glaze_end)
    albedo[foot] = np.array(kspec.body, np.float32)
    spec = np.where(foot, 0.0, spec)
    if kiln == "Ding":
        albedo[rim] = np.array((0.55, 0.46, 0.32), np.float32)
    elif prof.is_open:
        albedo[rim] = albedo[rim] * 0.6 + np.array(kspec.body, np.float32) * 0.4
    else:
        albedo[inside] = np.array((0.2, 0.18, 0.16), np.float32)

    ks = g.gloss * rng.uniform(0.35, 0.9)
    colour = albedo * shade[:, None] + (ks * spec)[:, None]
    img = bg.reshape(-1, 3)
    img[idx] = colour
    img = img.reshape(n, n, 3)

    out = canvas.finish(img, rng, gain)
    mask = canvas.downsample(sil.astype(np.float32)) >= 0.5
    facts.update(
        technique=technique, spout=prof.spout, handle=prof.handle, lugs=prof.lugs,
        cx=cx / n, cy=cy / n, fill=lay["fill"], tilt=float(np.rad2deg(lay["tilt"])),
        light=light.tolist(), warmth=warmth,
        wall=canvas.colour_name(bg_cols["wall"]), floor=canvas.colour_name(bg_cols["floor"]),
    )
    return out, mask, facts


def _glaze_effects(glaze, kiln, albedo, pool, sa, ss, rng) -> dict[str, Any]:
    """Crackle, hare's fur, speckle, tear marks, Jun splashes: modify albedo in place."""
    effects: list[str] = []
    if kiln == "Guan" or (glaze in ("moon white", "celadon") and rng.uniform() < 0.25):
        strong = kiln == "Guan"
        net = surface.crackle(sa, ss, rng, cells=6 if strong else 9, width=0.12)
        albedo *= (1.0 - (0.45 if strong else 0.15) * net)[:, None]
        effects.append("crackle")
    if glaze == "black":
        fur = surface.streaks(sa, ss, rng)
        albedo += (np.array((0.55, 0.32, 0.15), np.float32) - albedo) * (0.6 * fur)[:, None]
        effects.append("hare's-fur streaks")
    if glaze == "brown":
        dots = surface.speckle(sa.size, rng, 0.05)
        albedo += (np.array((0.78, 0.65, 0.5), np.float32) - albedo) * (0.7 * dots)[:, None]
        effects.append("oil-spot speckles")
    if glaze == "ivory white":
        tears = surface.streaks(sa, 1.0 - ss, rng) * (ss > 0.55)
        albedo += (pool - albedo) * (0.5 * tears)[:, None]
        effects.append("glaze tear marks")
    if kiln == "Jun" and rng.uniform() < 0.5:
        splash = surface.blob(sa, ss, rng)
        albedo += (np.array((0.55, 0.22, 0.42), np.float32) - albedo) * (0.75 * splash)[:, None]
        effects.append("purple splash")
    return {"effects": effects}
