"""SDXL in `generate`: text-to-image with a LoRA as diffusers makes it, ControlNet, refiner; and
each family's single file through the CLI, offline."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline
from PIL import Image
from tiny_families import (
    SIZE,
    build_family,
    config_copy,
    outline_sketch,
    pixels,
    plan_file,
    refiner_unet,
    save_controlnet,
    save_lora,
    workspace,
)
from typer.testing import CliRunner

from craftlora.catalog.workspace import Workspace
from craftlora.cli.main import app
from craftlora.generate.runner import generate
from craftlora.generate.samplers import set_sampler
from craftlora.models.ldm_families import save_family_checkpoint


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdxl")
    pipe, folder = build_family("sdxl", root, corpus=("white glaze vase tall neck",))
    return pipe, folder, root


def test_sdxl_folder_with_a_lora_makes_what_diffusers_makes(tmp_path, sdxl):
    pipe, folder, _ = sdxl
    lora = save_lora(pipe, tmp_path / "loras", "xlstyle")
    plan = plan_file(tmp_path, loras=["<lora:xlstyle:0.8>"], model=str(folder))
    with workspace(tmp_path) as ws:
        result = generate(ws, plan, model=str(folder), lora_dirs=[lora.parent], progress=False)
        assert result.made == 2
        recs = sorted(ws.catalog.images(set_name="syn"), key=lambda r: r.provenance["index"])
        prov = recs[0].provenance
        assert prov["model"] == str(folder) and len(prov["model_hash"]) == 64
        assert prov["loras"][0]["sha256"] == hashlib.sha256(lora.read_bytes()).hexdigest()
        assert (prov["width"], prov["height"]) == (SIZE, SIZE)
        got = [pixels(ws, r) for r in recs]

    ref = StableDiffusionXLPipeline.from_pretrained(folder, local_files_only=True)
    ref.set_progress_bar_config(disable=True)
    set_sampler(ref, "Euler")
    ref.load_lora_weights(str(lora), adapter_name="xlstyle")
    ref.set_adapters(["xlstyle"], adapter_weights=[0.8])
    want = ref(prompt=[prov["prompt_text"]] * 2, negative_prompt=["blurry"] * 2,
               num_inference_steps=2, guidance_scale=5.0, width=SIZE, height=SIZE,
               generator=[torch.Generator("cpu").manual_seed(r.provenance["seed"]) for r in recs],
               output_type="np").images
    for g, w in zip(got, want, strict=True):
        diff = np.abs(g.astype(int) - (w * 255).round().astype(int))
        assert diff.max() <= 1, diff.max()  # the PNG holds 8-bit values
    ref.disable_lora()
    plain = ref(prompt=prov["prompt_text"], negative_prompt="blurry", num_inference_steps=2,
                guidance_scale=5.0, width=SIZE, height=SIZE, output_type="np",
                generator=torch.Generator("cpu").manual_seed(recs[0].provenance["seed"])).images
    assert np.abs(got[0] - plain[0] * 255).mean() > 1.0  # the LoRA changed the image


def test_sdxl_controlnet_and_refiner(tmp_path, sdxl):
    pipe, folder, root = sdxl
    cn_dir = save_controlnet(pipe, tmp_path / "cn")
    sketch = outline_sketch(tmp_path / "sketch.png")
    refiner = tmp_path / "refiner"
    StableDiffusionXLImg2ImgPipeline(
        vae=pipe.vae, text_encoder=None, text_encoder_2=pipe.text_encoder_2, tokenizer=None,
        tokenizer_2=pipe.tokenizer_2, unet=refiner_unet(), scheduler=pipe.scheduler,
        requires_aesthetics_score=True, force_zeros_for_empty_prompt=False,
    ).save_pretrained(refiner, safe_serialization=True)

    plan = plan_file(tmp_path, sketch=str(sketch), count=1, model=str(folder))
    with workspace(tmp_path) as ws:
        generate(ws, plan, model=str(folder), controlnet=str(cn_dir), progress=False)
        (rec,) = ws.catalog.images(set_name="syn")
        assert rec.provenance["controlnet"]["source"] == str(cn_dir)
        assert 0.0 <= rec.provenance["contour"]["tolerant_f1"] <= 1.0
        guided = pixels(ws, rec)
    with workspace(tmp_path / "r") as ws:
        generate(ws, plan, model=str(folder), controlnet=str(cn_dir), refiner=refiner,
                 progress=False)
        (rec,) = ws.catalog.images(set_name="syn")
        assert rec.provenance["refiner"]["source"] == str(refiner)
        assert rec.provenance["refiner"]["strength"] == 0.3
        assert np.abs(pixels(ws, rec).astype(int) - guided).mean() > 1.0
    sd_plan = plan_file(tmp_path / "sd", count=1)
    with workspace(tmp_path / "sd") as ws, pytest.raises(ValueError, match="follows an SDXL base"):
        generate(ws, sd_plan, model="mini", refiner=refiner, progress=False)


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_single_file_of_each_family_generates_offline_from_the_cli(tmp_path, family,
                                                                   monkeypatch):
    """Each family's single file, offline, with a LoRA: plain, then ControlNet + img2img, then
    inpainting; every image in the catalog with what made it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe, folder = build_family(family, tmp_path / "m", corpus=("white glaze vase",))
    ckpt = save_family_checkpoint(family, pipe.unet, pipe.vae, pipe.text_encoder,
                                  tmp_path / f"{family}.safetensors",
                                  text_encoder_2=getattr(pipe, "text_encoder_2", None))
    config = config_copy(folder, tmp_path / "config", vocab=False)
    lora = save_lora(pipe, tmp_path / "loras", "style")
    cn = save_controlnet(pipe, tmp_path / "cn")
    sketch = outline_sketch(tmp_path / "sketch.png")
    init = tmp_path / "init.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), np.uint8)).save(init)
    mask = tmp_path / "mask.png"
    Image.new("L", (SIZE, SIZE), 255).save(mask)
    model = ["--model", str(ckpt), "--model-config", str(config), "--lora-dir", str(lora.parent),
             "--json"]
    workspace(tmp_path / "p0").close()
    bad = CliRunner().invoke(app, ["generate", str(tmp_path / "p0" / "ws"), "--plan",
                                   str(plan_file(tmp_path / "p0", count=1)), *model])
    assert bad.exit_code != 0 and "--tokenizer DIR" in bad.output
    model += ["--tokenizer", str(tmp_path / "m" / "tok")]
    runs = {"text": [], "guided": ["--controlnet", str(cn), "--init-image", str(init),
                                   "--strength", "0.6"],
            "inpaint": ["--init-image", str(init), "--mask", str(mask)]}
    for name, extra in runs.items():
        plan = plan_file(tmp_path / name, count=1, steps=4, model=str(ckpt),
                         loras=["<lora:style:0.7>"], sketch=str(sketch) if name == "guided" else "")
        workspace(tmp_path / name).close()
        ok = CliRunner().invoke(app, ["generate", str(tmp_path / name / "ws"), "--plan",
                                      str(plan), *model, *extra])
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.stdout)["made"] == 1
        with Workspace.open(tmp_path / name / "ws") as ws:
            (rec,) = ws.catalog.images(set_name="syn")
            prov = rec.provenance
            assert prov["model"] == str(ckpt)
            assert prov["loras"][0]["sha256"] == hashlib.sha256(lora.read_bytes()).hexdigest()
            assert prov.get("mode", "text") == ("img2img" if name == "guided" else name)
            assert ("controlnet" in prov) == (name == "guided")
            if name != "text":
                assert prov["init_image"]["sha256"] == hashlib.sha256(init.read_bytes()).hexdigest()
            assert np.asarray(Image.open(ws.resolve(rec.path))).std() > 1.0
