"""The design loop's generation: rounds of candidates from a prompt form, a sketch through a
ControlNet, or an img2img variation of a pick, on one pipeline loaded once and reused.

Every candidate is a PNG under ``WS/design/s<session>/`` with its seed and, when the session
has a sketch, its contour adherence (tolerant F1 at 2 px). Rounds are plain dicts kept in the
session's state (``craftlora.studio.sessions``).
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import StableDiffusionImg2ImgPipeline
from PIL import Image

from craftlora.catalog.workspace import confine
from craftlora.data.atomic import atomic_write_bytes
from craftlora.data.imageio import decode_rgb
from craftlora.generate.controlnet import (
    CONTOUR_RADIUS,
    condition_array,
    controlnet_pipeline,
    load_controlnet,
)
from craftlora.generate.prompts import LoraRef, PromptSpec, build_prompt, find_lora_files
from craftlora.generate.runner import pipeline_fingerprint
from craftlora.generate.samplers import set_sampler
from craftlora.metrics.contour import contour_adherence, sketch_mask
from craftlora.models.loader import MINI_NAMES, load_components
from craftlora.models.text import prompt_embeds
from craftlora.studio.context import StudioContext
from craftlora.studio.worker import Cancelled, Job

DESIGN_DIR = "design"
MAX_SKETCH_PIXELS = 16_000_000  # a sketch larger than this is refused before decoding
MAX_CANDIDATES = 16


class DesignError(ValueError):
    """A design request that cannot be carried out; the message says why."""


@dataclass
class RoundRequest:
    attributes: dict[str, str]
    free_text: str = ""
    negative: str = ""
    loras: list[tuple[str, float]] = field(default_factory=list)
    sampler: str = "Euler a"
    steps: int = 8
    cfg: float = 5.0
    seed: int = 0
    n: int = 4
    controlnet_scale: float = 1.0
    kind: str = "txt2img"  # "txt2img" (with the sketch when there is one) or "img2img"
    parent: dict[str, int] | None = None  # {"round": r, "candidate": k} of a variation
    strength: float = 0.5


@dataclass
class Sketch:
    png: bytes  # the re-encoded sketch as stored
    sha256: str
    edges: np.ndarray  # bool HxW at the generation size
    condition: Image.Image


def session_dir(session_id: int) -> str:
    return f"{DESIGN_DIR}/s{int(session_id)}"


def read_sketch(data: bytes, name: str, size: tuple[int, int]) -> Sketch:
    """A drawn or uploaded sketch through the safe loader (size cap, re-encoded to PNG)."""
    img, _ = decode_rgb(data, name, max_pixels=MAX_SKETCH_PIXELS)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    small = img.resize(size, Image.Resampling.BOX) if img.size != size else img
    edges = sketch_mask(small)
    if not edges.any():
        raise DesignError(f"{name}: the sketch has no strokes")
    cond = Image.fromarray(condition_array(edges))
    png = buf.getvalue()
    return Sketch(png, hashlib.sha256(png).hexdigest(), edges, cond)


def compose_prompt(ctx: StudioContext, attributes: dict[str, str], free_text: str) -> str:
    """The workspace's prompt for the chosen attributes, then the designer's own words."""
    unknown = {k: v for k, v in attributes.items()
               if k not in ctx.config.attributes or v not in ctx.config.attributes[k].values}
    if unknown:
        raise DesignError(f"not attribute values of this workspace: {unknown}")
    if set(attributes) == set(ctx.config.attributes):  # the workspace's full caption
        base = build_prompt(ctx.config, attributes, PromptSpec())
    else:  # some attributes left open: the phrases of those chosen
        base = ", ".join(ctx.config.phrase(k, v) for k, v in attributes.items())
    return ", ".join(p for p in (base, " ".join(free_text.split())) if p)


class DesignEngine:
    """One loaded pipeline (and ControlNet) for the whole studio; one round at a time."""

    def __init__(self, ctx: StudioContext, model: str = "mini", controlnet: str | None = None):
        self.ctx = ctx
        self.model = model
        self.controlnet_source = controlnet or ("mini" if model in MINI_NAMES else None)
        self.lock = threading.Lock()
        self._pipe: Any = None
        self._controlnet: Any = None
        self.model_hash = ""
        self.loads = 0

    # -- loading -------------------------------------------------------------------------
    def pipe(self) -> Any:
        if self._pipe is None:
            self._pipe = load_components(self.model).pipeline()
            self.model_hash = pipeline_fingerprint(self._pipe)
            self.loads += 1
        return self._pipe

    @property
    def size(self) -> tuple[int, int]:
        pipe = self.pipe()
        side = int(pipe.unet.config.sample_size) * 2 ** (len(pipe.vae.config.block_out_channels)
                                                          - 1)
        return side, side

    def controlnet(self) -> Any:
        if self.controlnet_source is None:
            raise DesignError(f"model {self.model!r} has no ControlNet; start the studio with "
                              "--controlnet FOLDER to use sketches")
        if self._controlnet is None:
            self._controlnet = load_controlnet(self.controlnet_source)
        return self._controlnet

    def _activate(self, loras: list[tuple[str, float]]) -> list[dict[str, Any]]:
        pipe = self.pipe()
        refs = [LoraRef(name, w, w) for name, w in loras]
        files = find_lora_files(refs, [self.ctx.root / "loras"])
        loaded = pipe.get_list_adapters().get("unet", []) if getattr(
            pipe.unet, "peft_config", None) else []
        for name, path in files.items():
            if name not in loaded:
                pipe.load_lora_weights(str(path), adapter_name=name)
        if getattr(pipe.unet, "peft_config", None):
            if refs:
                pipe.enable_lora()
                pipe.set_adapters([r.name for r in refs], adapter_weights=[r.unet for r in refs])
            else:
                pipe.disable_lora()
        return [{"name": r.name, "weight": r.unet, "file": files[r.name].name} for r in refs]

    # -- a round -------------------------------------------------------------------------
    def run_round(self, session_id: int, index: int, req: RoundRequest, sketch: Sketch | None,
                  parent_image: Image.Image | None, job: Job) -> dict[str, Any]:
        """Generate ``req.n`` candidates; returns the round record (files already written)."""
        if not 1 <= req.n <= MAX_CANDIDATES:
            raise DesignError(f"candidates must be 1..{MAX_CANDIDATES}")
        if req.kind == "img2img" and parent_image is None:
            raise DesignError("a variation needs a picked candidate")
        if req.kind == "img2img" and int(req.steps * req.strength) < 1:
            raise DesignError(f"steps × strength = {req.steps} × {req.strength} must give at "
                              "least one step")
        t0 = time.perf_counter()
        prompt = compose_prompt(self.ctx, req.attributes, req.free_text)
        with self.lock:
            job.report(0.0, "loading the model" if self._pipe is None else "starting")
            pipe = self.pipe()
            width, height = self.size
            scheduler = set_sampler(pipe, req.sampler)
            loras = self._activate(req.loras)
            seeds = [req.seed + k for k in range(req.n)]
            total = max(1, int(req.steps * req.strength)) if req.kind == "img2img" else req.steps

            def on_step(p: Any, step: int, timestep: Any, kw: dict[str, Any]) -> dict[str, Any]:
                job.report((step + 1) / total, f"step {step + 1} of {total}")
                if job.cancelled:
                    p._interrupt = True  # diffusers pipelines stop at the next step
                return kw

            kw: dict[str, Any] = dict(
                **prompt_embeds(pipe, [prompt] * req.n, [req.negative] * req.n, None),
                num_inference_steps=req.steps, guidance_scale=req.cfg,
                generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
                callback_on_step_end=on_step, output_type="pil")
            cn_meta = None
            if req.kind == "img2img":
                runner = StableDiffusionImg2ImgPipeline(**pipe.components,
                                                        requires_safety_checker=False)
                kw.update(image=[parent_image.convert("RGB").resize((width, height))] * req.n,
                          strength=req.strength)
            elif sketch is not None:
                runner = controlnet_pipeline(pipe, self.controlnet())
                kw.update(image=[sketch.condition] * req.n, width=width, height=height,
                          controlnet_conditioning_scale=req.controlnet_scale)
                cn_meta = {"source": str(self.controlnet_source), "scale": req.controlnet_scale}
            else:
                runner = pipe
                kw.update(width=width, height=height)
            runner.set_progress_bar_config(disable=True)
            images = runner(**kw).images
            if job.cancelled:
                raise Cancelled("cancelled; nothing from this round was kept")
        candidates = [self._save(session_id, index, k, s, img, sketch)
                      for k, (s, img) in enumerate(zip(seeds, images, strict=True))]
        return {"index": index, **asdict(req), "prompt": prompt, "seeds": seeds,
                "width": width, "height": height, "model": self.model,
                "model_hash": self.model_hash, "scheduler": type(scheduler).__name__,
                "loras": loras, "controlnet": cn_meta,
                "sketch": None if sketch is None else sketch.sha256,
                "wall_s": round(time.perf_counter() - t0, 3), "candidates": candidates}

    def _save(self, session_id: int, index: int, k: int, seed: int, img: Image.Image,
              sketch: Sketch | None) -> dict[str, Any]:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        rel = f"{session_dir(session_id)}/r{index:02d}-c{k:02d}-{seed}.png"
        atomic_write_bytes(confine(self.ctx.root, rel), buf.getvalue())
        contour = None if sketch is None else {
            name: (float(v) if isinstance(v, (int, float, np.floating)) else v)
            for name, v in contour_adherence(sketch.edges, img, CONTOUR_RADIUS).items()}
        return {"k": k, "seed": seed, "file": rel,
                "sha256": hashlib.sha256(buf.getvalue()).hexdigest(), "contour": contour,
                "picked": False, "starred": False, "note": ""}


def store_sketch(ctx: StudioContext, session_id: int, sketch: Sketch) -> str:
    rel = f"{session_dir(session_id)}/sketch-{sketch.sha256[:16]}.png"
    path = confine(ctx.root, rel)
    if not Path(path).exists():
        atomic_write_bytes(path, sketch.png)
    return rel
