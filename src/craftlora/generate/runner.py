"""Generate a plan's set into the catalog: batched, resumable, sharded across processes.

Every image has one seed, derived from (plan seed, set, entry, index), and an id derived from
(set, entry, index, seed); its file path follows from the id. A rerun skips every id already
in the catalog, so only missing images are made; temp files a killed run left are removed.
A PNG is written atomically first and then registered in one catalog transaction, so a
killed run leaves at worst a file without a catalog row, which the rerun overwrites.

Two runs on one plan at once share it: each claims a batch of ids before making them
(``craftlora.generate.claims``), skips ids another live run claimed, and at the end waits for
those to reach the catalog (taking over the ones of a run that died), so both finish with the
plan complete and nothing made twice.

Under ``accelerate launch`` each process takes the jobs whose position ``k`` in the set has
``k % num_processes == process_index`` (disjoint slices); SQLite serialises the writes.
"""

from __future__ import annotations

import hashlib
import io
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

import craftlora
from craftlora.catalog.store import CatalogError
from craftlora.catalog.workspace import Workspace
from craftlora.data.atomic import atomic_write_bytes
from craftlora.data.imageio import sha256_file
from craftlora.generate.claims import Claims
from craftlora.generate.controlnet import (
    MINI_CONTROLNET_NAMES,
    Sketch,
    adherence,
    load_controlnet,
    load_sketch,
    shipped_segmenter,
)
from craftlora.generate.img2img import (
    REFINER_STRENGTH,
    check_init_files,
    image_kwargs,
    is_sdxl,
    load_init_image,
    load_refiner,
    pipeline_for,
)
from craftlora.generate.plan_model import Plan, PlanEntry, PlanSet, load_plan
from craftlora.generate.prompts import LoraRef, build_prompt, find_lora_files, parse_prompt
from craftlora.generate.samplers import set_sampler
from craftlora.models.fast import levers_applied
from craftlora.models.text import diffusers_clip_skip, prompt_embeds

SYNTHETIC_DIR = "synthetic"
CLAIM_WAIT_S = 0.5  # how often a run re-checks ids another live run is making


@dataclass(frozen=True)
class Job:
    entry: PlanEntry
    index: int
    seed: int
    gen_id: str
    path: str  # relative to the workspace
    prompt: str  # full prompt as written (with LoRA tags)
    text: str  # what the text encoder sees
    loras: tuple[LoraRef, ...]
    sketch: str  # sketch file or ""


@dataclass
class GenerateResult:
    set_name: str
    planned: int = 0
    in_shard: int = 0
    already: int = 0
    made: int = 0
    duplicates: list[str] = field(default_factory=list)
    orphans_removed: int = 0
    wall_s: float = 0.0
    images_per_s: float = 0.0
    contour_f1: list[float] = field(default_factory=list)
    vessel_f1: list[float] = field(default_factory=list)
    process: tuple[int, int] = (0, 1)

    def to_dict(self) -> dict[str, Any]:
        f1 = self.contour_f1
        return {
            "set": self.set_name,
            "planned": self.planned,
            "in_shard": self.in_shard,
            "already_present": self.already,
            "made": self.made,
            "duplicates": self.duplicates,
            "orphans_removed": self.orphans_removed,
            "wall_s": round(self.wall_s, 3),
            "images_per_s": round(self.images_per_s, 3),
            "contour_tolerant_f1_mean": (sum(f1) / len(f1)) if f1 else None,
            "contour_images": len(f1),
            "contour_vessel_f1_mean": (
                sum(self.vessel_f1) / len(self.vessel_f1) if self.vessel_f1 else None
            ),
            "process": {"index": self.process[0], "count": self.process[1]},
        }


def image_seed(base: int, set_name: str, entry_id: str, index: int) -> int:
    """The seed of one image: stable under edits to other entries and to counts."""
    h = hashlib.sha256(f"{base}|{set_name}|{entry_id}|{index}".encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


def image_id(set_name: str, entry_id: str, index: int, seed: int) -> str:
    return hashlib.sha256(f"{set_name}|{entry_id}|{index}|{seed}".encode()).hexdigest()[:16]


def plan_jobs(ws: Workspace, plan: Plan, plan_set: PlanSet, sketch: str | Path | None) -> list[Job]:
    """Every image of the set, in plan order (whether made already or not)."""
    jobs: list[Job] = []
    for e in plan_set.entries:
        prompt = e.prompt or build_prompt(ws.config, e.attributes, plan.prompt)
        parsed = parse_prompt(prompt)
        sk = str(sketch) if sketch else e.sketch
        if sk and not Path(sk).is_absolute():
            sk = str(ws.root / sk)
        for i in range(e.count):
            seed = image_seed(plan.generation.seed, plan_set.name, e.id, i)
            gid = image_id(plan_set.name, e.id, i, seed)
            path = f"{SYNTHETIC_DIR}/{plan_set.name}/{e.id}/{i:05d}-{gid}.png"
            jobs.append(Job(e, i, seed, gid, path, prompt, parsed.text, parsed.loras, sk))
    return jobs


def shard_of(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    return [j for k, j in enumerate(jobs) if k % count == index]


def _process() -> tuple[int, int]:
    """(index, count) of this process under ``accelerate launch`` / ``torchrun``; else (0, 1).

    Without a GPU, accelerate only forms a multi-process group when asked for CPU
    (``cpu=True``); so two CPU processes work with ``accelerate launch --multi_gpu
    --num_processes 2`` (or ``torchrun --nproc_per_node 2``) on a machine without CUDA.
    """
    from accelerate import PartialState

    s = PartialState(cpu=not torch.cuda.is_available())
    return int(s.process_index), int(s.num_processes)


def pipeline_fingerprint(pipe: Any) -> str:
    """sha256 over the text encoder, UNet and VAE weights (taken before LoRAs are loaded)."""
    from craftlora.models.loader import module_hash

    h = hashlib.sha256()
    names = ("text_encoder", "text_encoder_2") if is_sdxl(pipe) else ("text_encoder",)
    for name in (*names, "unet", "vae"):
        mod = getattr(pipe, name)
        h.update(module_hash(mod, _config_dict(mod)).encode())
    return h.hexdigest()


def generate(
    ws: Workspace,
    plan_path: str | Path,
    set_name: str | None = None,
    *,
    pipe: Any = None,
    model: str = "mini",
    model_hash: str | None = None,
    lora_dirs: Sequence[str | Path] = (),
    sketch: str | Path | None = None,
    controlnet: Any = None,
    init_image: str | Path | None = None,
    mask: str | Path | None = None,
    strength: float = 0.75,
    refiner: str | Path | None = None,
    model_options: dict[str, Any] | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    device: str | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> GenerateResult:
    """Make the images of ``set_name`` that the catalog lacks; return what was done.

    ``pipe`` is a diffusers SD or SDXL text-to-image pipeline; without it the model is loaded
    from ``model`` (``mini``, a diffusers folder or a single file, via ``craftlora.models``;
    ``model_options`` go to ``load_components``: ``config``, ``tokenizer``,
    ``prediction_type``). LoRAs named in prompts are looked up in ``lora_dirs`` and
    ``WS/loras``. ``init_image`` (+ ``strength``) makes every image img2img, with ``mask``
    inpainting (``craftlora.generate.img2img``); ``refiner`` is an SDXL refiner folder.
    ``limit`` stops after that many new images (the rest is made by the next run).
    """
    check_init_files(init_image, mask, strength)
    t0 = time.perf_counter()
    plan = load_plan(plan_path)
    plan.check_against(ws.config)
    plan_set = plan.get_set(set_name)
    g = plan.generation
    index, count = shard or _process()
    result = GenerateResult(set_name=plan_set.name, process=(index, count))
    jobs = plan_jobs(ws, plan, plan_set, sketch)
    result.planned = len(jobs)
    mine = shard_of(jobs, index, count)
    result.in_shard = len(mine)
    claims = Claims(ws.root / SYNTHETIC_DIR / plan_set.name)
    result.orphans_removed = claims.clean_orphans()
    known = ws.catalog.known_paths()
    todo = [j for j in mine if j.path not in known]
    result.already = len(mine) - len(todo)
    if limit is not None:
        todo = todo[:limit]
    if not todo:
        result.wall_s = time.perf_counter() - t0
        return result

    # every LoRA file must exist before any image is made
    all_loras = {r.name: r for j in todo for r in j.loras}
    dirs = [*map(Path, lora_dirs), ws.root / "loras"]
    lora_files = find_lora_files(all_loras.values(), dirs)
    cn_source = controlnet or g.controlnet or None
    if cn_source is None and pipe is None and model in ("mini", "mini-base"):
        cn_source = MINI_CONTROLNET_NAMES[0]  # the mini base's shipped outline ControlNet
    if any(j.sketch for j in todo) and not cn_source:
        raise ValueError(
            "sketch guidance needs a ControlNet: set [generation] controlnet in the plan "
            "or pass --controlnet (the mini base uses the shipped one)"
        )

    if pipe is None:
        from craftlora.models.loader import load_components

        pipe = load_components(model, **(model_options or {})).pipeline()
    if refiner is not None and not is_sdxl(pipe):
        raise ValueError(f"{refiner}: a refiner follows an SDXL base; {model} is not SDXL")
    if device:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    model_hash = model_hash or pipeline_fingerprint(pipe)
    scheduler = set_sampler(pipe, g.sampler)
    lora_meta: dict[str, dict[str, Any]] = {}
    for name, path in lora_files.items():
        if name not in (pipe.get_list_adapters().get("unet", []) if _has_peft(pipe) else []):
            pipe.load_lora_weights(str(path), adapter_name=name)
        lora_meta[name] = {"file": str(path), "sha256": sha256_file(path)}

    cn_pipe, cn_meta, segmenter, condition = None, None, None, "outline"
    if cn_source and any(j.sketch for j in todo):
        cn_model = load_controlnet(cn_source)
        condition = getattr(cn_model, "craftlora_condition", "outline")
        cn_pipe = cn_model
        seg_path = shipped_segmenter(cn_source)
        if seg_path is not None:  # the mini outline ControlNet: also score the vessel outline
            from craftlora.generate.silhouette import load_silhouette

            segmenter = load_silhouette(seg_path)
        cn_meta = {
            "source": str(cn_source) if not hasattr(cn_source, "config") else "in-memory",
            "sha256": pipeline_module_hash(cn_model),
            "scale": g.controlnet_scale,
            "condition": condition,
        }

    vae_scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    width = g.width or pipe.unet.config.sample_size * vae_scale
    height = g.height or pipe.unet.config.sample_size * vae_scale
    clip_skip = diffusers_clip_skip(g.clip_skip)
    bs = batch_size or g.batch_size
    sketches: dict[str, Sketch] = {}
    init = None if init_image is None else load_init_image(init_image, (width, height),
                                                           strength, mask)
    mode = "text" if init is None else init.mode
    runners = {False: pipeline_for(pipe, mode)}
    if cn_pipe is not None:
        runners[True] = pipeline_for(pipe, mode, cn_pipe)
    refine = None
    if refiner is not None:
        refine = load_refiner(refiner)
        if refine.device != pipe.device:
            refine.to(pipe.device)
        refine_steps = max(g.steps, math.ceil(1 / REFINER_STRENGTH))  # at least one step
        refine_meta = {"source": str(refiner), "strength": REFINER_STRENGTH,
                       "steps": refine_steps, "sha256": pipeline_module_hash(refine.unet)}

    groups: dict[tuple[Any, ...], list[Job]] = {}
    for j in todo:
        key = (tuple((r.name, r.unet, r.te) for r in j.loras), bool(j.sketch))
        groups.setdefault(key, []).append(j)

    bar = _bar(len(todo), progress, f"generate {plan_set.name}")
    gen_t0 = time.perf_counter()
    with levers_applied(pipe, g.levers) as lever_record:
        try:
            for (lkey, guided), group in groups.items():
                _activate(pipe, lkey)
                pending = list(group)
                while pending:
                    batch, pending = _claim_batch(ws, claims, pending, bs, result)
                    if not batch:  # the rest is being made by another live run
                        time.sleep(CLAIM_WAIT_S)
                        continue
                    kw: dict[str, Any] = dict(
                        **prompt_embeds(pipe, [j.text for j in batch],
                                        [plan.prompt.negative] * len(batch), clip_skip),
                        num_inference_steps=g.steps,
                        guidance_scale=g.cfg,
                        generator=[torch.Generator("cpu").manual_seed(j.seed) for j in batch],
                        width=width,
                        height=height,
                        output_type="pil",
                    )
                    cond = None
                    if guided:
                        for j in batch:
                            if j.sketch not in sketches:
                                sketches[j.sketch] = load_sketch(
                                    j.sketch, (width, height), g.sketch_mode, condition
                                )
                        cond = [sketches[j.sketch].condition for j in batch]
                        kw["controlnet_conditioning_scale"] = g.controlnet_scale
                    kw.update(image_kwargs(mode, len(batch), init, cond))
                    if mode == "img2img" and not guided:  # its size is the init image's
                        del kw["width"], kw["height"]
                    images = runners[guided](**kw).images
                    if refine is not None:
                        images = refine(
                            prompt=[j.text for j in batch],
                            negative_prompt=[plan.prompt.negative] * len(batch), image=images,
                            strength=REFINER_STRENGTH, num_inference_steps=refine_steps,
                            guidance_scale=g.cfg, output_type="pil",
                            generator=[torch.Generator("cpu").manual_seed(j.seed) for j in batch],
                        ).images
                    for j, img in zip(batch, images, strict=True):
                        prov = _provenance(plan_path, plan, j, model, model_hash, scheduler,
                                           lora_meta, width, height)
                        if guided:
                            sk = sketches[j.sketch]
                            score = adherence(sk, img)
                            if segmenter is not None:
                                score["vessel_tolerant_f1"] = vessel_adherence(segmenter, sk, img)
                                result.vessel_f1.append(score["vessel_tolerant_f1"])
                            prov["controlnet"] = cn_meta
                            prov["sketch"] = {"path": sk.path, "sha256": sk.sha256}
                            prov["contour"] = score
                            result.contour_f1.append(float(score["tolerant_f1"]))
                        if init is not None:
                            prov["mode"] = mode
                            prov["init_image"] = init.provenance()
                        if refine is not None:
                            prov["refiner"] = refine_meta
                        if lever_record:
                            prov["levers"] = lever_record
                        if _register(ws, plan_set.name, j, img, prov):
                            result.made += 1
                        else:
                            result.duplicates.append(j.gen_id)
                    claims.release(j.gen_id for j in batch)
                    bar.update(len(batch))
                    if on_batch is not None:
                        on_batch(len(batch))
        finally:
            claims.release_all()
            bar.close()
    gen_s = time.perf_counter() - gen_t0
    result.images_per_s = len(todo) / gen_s if gen_s > 0 else 0.0
    result.wall_s = time.perf_counter() - t0
    return result


def _claim_batch(ws: Workspace, claims: Claims, pending: list[Job], size: int,
                 result: GenerateResult) -> tuple[list[Job], list[Job]]:
    """Claim up to ``size`` pending jobs not yet in the catalog: (claimed, still pending).

    Jobs another run registered meanwhile count as already present and leave ``pending``.
    """
    with claims.locked():
        known = ws.catalog.known_paths()
        fresh = [j for j in pending if j.path not in known]
        result.already += len(pending) - len(fresh)
        got = set(claims.take([j.gen_id for j in fresh], size))
    return [j for j in fresh if j.gen_id in got], [j for j in fresh if j.gen_id not in got]


def vessel_adherence(segmenter: Any, sketch: Sketch, image: Image.Image) -> float:
    """Tolerant F1 (2 px) of the sketch against the segmented vessel outline of ``image``."""
    from craftlora.generate.controlnet import CONTOUR_RADIUS
    from craftlora.generate.silhouette import vessel_outlines
    from craftlora.metrics.contour import tolerant_edge_f1

    return tolerant_edge_f1(vessel_outlines(segmenter, [image])[0], sketch.edges, CONTOUR_RADIUS)


def pipeline_module_hash(module: Any) -> str:
    from craftlora.models.loader import module_hash

    return module_hash(module, _config_dict(module))


def _config_dict(module: Any) -> dict[str, Any] | None:
    cfg = getattr(module, "config", None)
    if cfg is None:
        return None
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)


def _has_peft(pipe: Any) -> bool:
    return bool(getattr(pipe.unet, "peft_config", None))


def _activate(pipe: Any, lkey: tuple[tuple[str, float, float], ...]) -> None:
    """Switch the pipeline's LoRA adapters to exactly those of a job group."""
    if not _has_peft(pipe):
        return
    if not lkey:
        pipe.disable_lora()
        return
    pipe.enable_lora()
    names = [n for n, _, _ in lkey]
    encoders = ("text_encoder", "text_encoder_2") if is_sdxl(pipe) else ("text_encoder",)
    weights = [{"unet": u, **dict.fromkeys(encoders, t)} for _, u, t in lkey]
    pipe.set_adapters(names, adapter_weights=weights)


def _provenance(
    plan_path: str | Path,
    plan: Plan,
    j: Job,
    model: str,
    model_hash: str,
    scheduler: Any,
    lora_meta: dict[str, dict[str, Any]],
    width: int,
    height: int,
) -> dict[str, Any]:
    g = plan.generation
    return {
        "generator": "craftlora.generate",
        "craftlora_version": craftlora.__version__ if hasattr(craftlora, "__version__") else "",
        "gen_id": j.gen_id,
        "plan": str(plan_path),
        "plan_entry": j.entry.id,
        "tier": j.entry.tier,
        "index": j.index,
        "seed": j.seed,
        "prompt": j.prompt,
        "prompt_text": j.text,
        "negative": plan.prompt.negative,
        "sampler": g.sampler,
        "scheduler": type(scheduler).__name__,
        "steps": g.steps,
        "cfg": g.cfg,
        "clip_skip": g.clip_skip,
        "clip_skip_convention": "A1111 (diffusers clip_skip = this - 1)",
        "width": width,
        "height": height,
        "model": model,
        "model_hash": model_hash,
        "loras": [
            {"name": r.name, "unet": r.unet, "te": r.te, **lora_meta.get(r.name, {})}
            for r in j.loras
        ],
    }


def _register(ws: Workspace, set_name: str, j: Job, img: Image.Image, prov: dict[str, Any]) -> bool:
    """Write the PNG atomically, then add it to the catalog. False for a content duplicate."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    path = ws.resolve(j.path)
    atomic_write_bytes(path, data)
    try:
        ws.catalog.add_image(
            sha256=sha,
            path=j.path,
            width=img.width,
            height=img.height,
            origin="synthetic",
            set_name=set_name,
            source="craftlora generate",
            split="train",
            caption=j.text,
            provenance=prov,
            attributes=j.entry.attributes,
        )
    except CatalogError as e:
        if "same path" in str(e):  # registered by another run: its file, keep it
            return False
        path.unlink(missing_ok=True)  # no file without its catalog row
        if "same content" in str(e):
            return False
        raise
    except sqlite3.Error as e:  # disk full, read-only: one line, the file not kept
        path.unlink(missing_ok=True)
        raise CatalogError(f"{ws.catalog.path}: could not register {j.path} ({e}); "
                           "nothing half written, rerun to continue") from e
    return True


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img")
