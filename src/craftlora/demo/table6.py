"""The porcelain study's Table 6 on the mini world: the base model vs base + LoRA.

Both models get the same prompts (the workspace caption template filled with the attributes of
real test images, chosen with a fixed seed) and the same per-image seeds. For each model:

- ``fd_domain``: Fréchet distance in the judge's feature space to the real test images;
- ``glaze_type_agreement``: share of images whose glaze and type the judge reads as intended;
- ``combo_agreement``: share with all four attributes read as intended.

``judge_ceiling`` is the judge's own reading of fresh true renders of the same combinations
(the best any generator can score under this judge), with their FD beside it.
``decoder_ceiling`` reads the same renders after a round trip through the base's VAE: every
generated image leaves through that decoder, so this is the best a generator here can look.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from craftlora.demo.settings import DemoSettings
from craftlora.mini.judge import true_renders

MODELS = ("base", "lora")


def prompt_seed(i: int) -> int:
    h = hashlib.sha256(f"table6|{i}".encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


def choose_prompts(ws_dir: Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` real test images' combinations → prompts (with repeats if the split is small)."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.generate.prompts import build_prompt

    with Workspace.open(ws_dir) as ws:
        recs = ws.catalog.images(split="test", origin="real")
        if not recs:
            raise ValueError(f"{ws_dir}: no real test images to take prompts from")
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(recs), size=n, replace=n > len(recs))
        out = []
        for k, j in enumerate(pick.tolist()):
            attrs = dict(recs[j].attributes)
            out.append({"i": k, "attributes": attrs, "prompt": build_prompt(ws.config, attrs),
                        "seed": prompt_seed(k)})
    return out


def generate_shard(out: str, s_json: str, lora_file: str, shard: int, count: int,
                   report: Any = None) -> dict[str, Any]:
    """Make this shard's images for both models (skipping files that exist)."""
    import torch

    from craftlora.generate.prompts import DEFAULT_NEGATIVE
    from craftlora.generate.runner import pipeline_fingerprint
    from craftlora.generate.samplers import set_sampler
    from craftlora.models.loader import load_components
    from craftlora.models.text import diffusers_clip_skip, encode_text

    s = DemoSettings.model_validate_json(s_json)
    g = s.generation
    root = Path(out)
    prompts = json.loads((root / "prompts.json").read_text(encoding="utf-8"))
    mine = prompts[shard::count]
    pipe = load_components(s.model).pipeline()
    pipe.set_progress_bar_config(disable=True)
    model_hash = pipeline_fingerprint(pipe)
    set_sampler(pipe, g.sampler)
    pipe.load_lora_weights(lora_file, adapter_name="minikiln")
    skip = diffusers_clip_skip(g.clip_skip)
    made = 0
    for model in MODELS:
        folder = root / model
        folder.mkdir(parents=True, exist_ok=True)
        if model == "base":
            pipe.disable_lora()
        else:
            pipe.enable_lora()
            pipe.set_adapters(["minikiln"], adapter_weights=[
                {"unet": s.lora.weight, "text_encoder": s.lora.weight}])
        todo = [p for p in mine if not (folder / f"{p['i']:05d}.png").is_file()]
        if report is not None and len(todo) < len(mine):
            report(len(mine) - len(todo))
        for b in range(0, len(todo), g.batch_size):
            batch = todo[b:b + g.batch_size]
            images = pipe(
                prompt_embeds=encode_text(pipe, [p["prompt"] for p in batch], skip),
                negative_prompt_embeds=encode_text(pipe, [DEFAULT_NEGATIVE] * len(batch), skip),
                num_inference_steps=g.steps, guidance_scale=g.cfg,
                generator=[torch.Generator("cpu").manual_seed(p["seed"]) for p in batch],
                width=s.size, height=s.size,
            ).images
            for p, im in zip(batch, images, strict=True):
                tmp = folder / f".{p['i']:05d}.png.tmp"
                im.save(tmp, format="PNG")
                tmp.replace(folder / f"{p['i']:05d}.png")
            made += len(batch)
            if report is not None:
                report(len(batch))
    return {"made": made, "model_hash": model_hash}


def measure(out: Path, ws_dir: Path, judge_path: Path, size: int, vae: Any = None
            ) -> dict[str, Any]:
    """Every Table 6 figure from the images on disk (``decoder_ceiling`` only with ``vae``)."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.metrics.agreement import attribute_agreement
    from craftlora.metrics.fd import fd_between
    from craftlora.metrics.judge import Judge
    from craftlora.metrics.sets import load_images

    prompts = json.loads((out / "prompts.json").read_text(encoding="utf-8"))
    judge = Judge(judge_path)
    with Workspace.open(ws_dir) as ws:
        _, real, errors = load_images(ws, ws.catalog.images(split="test", origin="real"))
    real_f, _ = judge.read(real)
    intended = [{k: v for k, v in p["attributes"].items() if k in judge.labels} for p in prompts]

    def row(arrays: list[np.ndarray]) -> dict[str, Any]:
        feats, preds = judge.read(arrays)
        agr = attribute_agreement(preds, intended, pairs=[("glaze", "type")])
        fd = fd_between(feats, real_f)
        return {"fd_domain": fd["fd"], "glaze_type_agreement": agr["glaze_type"],
                "combo_agreement": agr["combo"], "per_attribute": agr["per_attribute"],
                "n": len(arrays), "n_real": fd["n2"], "predicted": preds}

    res: dict[str, Any] = {}
    for model in MODELS:
        arrays = [np.asarray(Image.open(out / model / f"{p['i']:05d}.png").convert("RGB"))
                  for p in prompts]
        res[model] = row(arrays)
    renders = true_renders(prompts, size)
    ceiling = row(renders)
    res["judge_ceiling"] = ceiling
    if vae is not None:
        from craftlora.models.roundtrip import roundtrip_images

        res["decoder_ceiling"] = row(roundtrip_images(vae, renders))
    b, lo = res["base"], res["lora"]
    fd_drop = 1.0 - lo["fd_domain"] / b["fd_domain"] if b["fd_domain"] > 0 else None
    res["checks"] = {
        "fd_reduction": fd_drop,
        "fd_reduction_at_least_50pct": fd_drop is not None and fd_drop >= 0.5,
        "lora_glaze_type_at_least_0.80": lo["glaze_type_agreement"] >= 0.80,
        "lora_combo_over_ceiling": (lo["combo_agreement"] / ceiling["combo_agreement"]
                                    if ceiling["combo_agreement"] > 0 else None),
        "lora_combo_at_least_80pct_of_ceiling":
            (lo["combo_agreement"] >= 0.8 * ceiling["combo_agreement"]
             if ceiling["combo_agreement"] > 0 else None),
        "base_far_lower": (b["glaze_type_agreement"] <= 0.5 * lo["glaze_type_agreement"]
                           and b["combo_agreement"] <= 0.5 * lo["combo_agreement"]),
    }
    res["judge"] = judge.describe()
    res["reference"] = {"set": "real test split", "n": len(real), "skipped": errors}
    res["prompts"] = len(prompts)
    return res


def public(res: dict[str, Any]) -> dict[str, Any]:
    """Table 6 for demo.json (no per-image predictions)."""
    keep = ("fd_domain", "glaze_type_agreement", "combo_agreement", "per_attribute", "n")
    rows = (*MODELS, "judge_ceiling", "decoder_ceiling")
    out = {m: {k: res[m][k] for k in keep} for m in rows if m in res}
    for k in ("checks", "judge", "reference", "prompts"):
        out[k] = res[k]
    return out
