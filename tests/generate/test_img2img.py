"""img2img and inpainting for SD 1.5, SD 2.x and SDXL in `generate`: as diffusers makes them,
with the init image and mask in the provenance."""

from __future__ import annotations

import hashlib

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_families import SIZE, build_family, pixels, plan_file, workspace
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.generate.img2img import InitImageError
from craftlora.generate.runner import generate
from craftlora.generate.samplers import set_sampler

IMG2IMG = {"sd15": "StableDiffusionImg2ImgPipeline", "sd2": "StableDiffusionImg2ImgPipeline",
           "sdxl": "StableDiffusionXLImg2ImgPipeline"}
INPAINT = {"sd15": "StableDiffusionInpaintPipeline", "sd2": "StableDiffusionInpaintPipeline",
           "sdxl": "StableDiffusionXLInpaintPipeline"}


@pytest.fixture(scope="module", params=["sd15", "sd2", "sdxl"])
def family(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    _, folder = build_family(request.param, root, corpus=("white glaze vase",))
    rng = np.random.default_rng(0)
    init = root / "init.png"
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(init)
    mask = root / "mask.png"
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[:, : SIZE // 2] = 255  # repaint the left half
    Image.fromarray(m).save(mask)
    return request.param, folder, init, mask


def test_img2img_makes_what_diffusers_makes(tmp_path, family):
    name, folder, init, _ = family
    plan = plan_file(tmp_path, count=2, steps=4, model=str(folder))
    with workspace(tmp_path) as ws:
        generate(ws, plan, model=str(folder), init_image=init, strength=0.5, progress=False)
        recs = sorted(ws.catalog.images(set_name="syn"), key=lambda r: r.provenance["index"])
        prov = recs[0].provenance
        assert prov["mode"] == "img2img"
        assert prov["init_image"] == {"path": str(init), "strength": 0.5,
                                      "sha256": hashlib.sha256(init.read_bytes()).hexdigest()}
        got = [pixels(ws, r).astype(int) for r in recs]
    ref = getattr(diffusers, IMG2IMG[name]).from_pretrained(folder, local_files_only=True)
    ref.set_progress_bar_config(disable=True)
    set_sampler(ref, "Euler")
    image = Image.open(init).convert("RGB")
    want = ref(prompt=[prov["prompt_text"]] * 2, negative_prompt=["blurry"] * 2,
               image=[image] * 2, strength=0.5, num_inference_steps=4, guidance_scale=5.0,
               generator=[torch.Generator("cpu").manual_seed(r.provenance["seed"]) for r in recs],
               output_type="np").images
    for g, w in zip(got, want, strict=True):
        assert np.abs(g - (w * 255).round().astype(int)).max() <= 1
    assert np.abs(got[0] - np.asarray(image, dtype=int)).mean() > 1.0


def test_inpainting_makes_what_diffusers_makes_and_repaints_the_mask(tmp_path, family):
    name, folder, init, mask = family
    out, seeds = [], []
    for negative in ("blurry", "glossy celadon"):
        root = tmp_path / negative.replace(" ", "-")
        plan = plan_file(root, count=1, steps=3, model=str(folder))
        plan.write_text(plan.read_text().replace('negative = "blurry"',
                                                 f'negative = "{negative}"'))
        with workspace(root) as ws:
            generate(ws, plan, model=str(folder), init_image=init, mask=mask, strength=1.0,
                     progress=False)
            (rec,) = ws.catalog.images(set_name="syn")
            assert rec.provenance["mode"] == "inpaint"
            assert rec.provenance["init_image"]["mask"] == {
                "path": str(mask), "sha256": hashlib.sha256(mask.read_bytes()).hexdigest()}
            out.append(pixels(ws, rec).astype(int))
            seeds.append(rec.provenance["seed"])
    ref = getattr(diffusers, INPAINT[name]).from_pretrained(folder, local_files_only=True)
    ref.set_progress_bar_config(disable=True)
    set_sampler(ref, "Euler")
    want = ref(prompt=rec.provenance["prompt_text"], negative_prompt="blurry",
               image=Image.open(init).convert("RGB"), mask_image=Image.open(mask).convert("L"),
               strength=1.0, num_inference_steps=3, guidance_scale=5.0, width=SIZE, height=SIZE,
               generator=torch.Generator("cpu").manual_seed(seeds[0]), output_type="np").images
    assert np.abs(out[0] - (want[0] * 255).round().astype(int)).max() <= 1
    # another negative prompt changes the masked half most (the tiny VAE's mid-block
    # attention spreads some change over the whole image)
    diff = np.abs(out[0] - out[1]).astype(float)
    left, right = diff[:, : SIZE // 2 - 4].mean(), diff[:, SIZE // 2 + 4:].mean()
    assert left > 1.0 and right < left, (name, left, right)


def test_inpainting_from_the_cli(tmp_path, family):
    name, folder, init, mask = family
    if name != "sd15":
        pytest.skip("the CLI plumbing is the same for every family")
    plan = plan_file(tmp_path, count=1, model=str(folder))
    workspace(tmp_path).close()
    args = ["generate", str(tmp_path / "ws"), "--plan", str(plan), "--model", str(folder)]
    r = CliRunner().invoke(app, [*args, "--init-image", str(init), "--mask", str(mask),
                                 "--strength", "0.9"])
    assert r.exit_code == 0, r.output
    for extra, msg in ((["--mask", str(mask)], "needs an init image"),
                       (["--init-image", str(tmp_path / "nope.png")], "nope.png: init image not"),
                       (["--init-image", str(init), "--strength", "0"], "strength must be")):
        bad = CliRunner().invoke(app, [*args, *extra])
        assert bad.exit_code != 0 and msg in bad.output, bad.output


def test_an_empty_mask_is_named(tmp_path, family):
    name, folder, init, _ = family
    if name != "sd15":
        pytest.skip("checked once")
    empty = tmp_path / "empty.png"
    Image.new("L", (SIZE, SIZE), 0).save(empty)
    plan = plan_file(tmp_path, count=1, model=str(folder))
    with workspace(tmp_path) as ws:
        with pytest.raises(InitImageError, match="empty.png: the mask has no white"):
            generate(ws, plan, model=str(folder), init_image=init, mask=empty, progress=False)
        assert ws.catalog.count() == 0


def test_mode_pipelines_share_the_modules_and_keep_their_dtype(family):
    name, folder, _, _ = family
    if name == "sd2":
        pytest.skip("SD 2.x uses SD 1.x's pipeline classes")
    from craftlora.generate.img2img import pipeline_for
    from craftlora.models.loader import load_components

    pipe = load_components(folder).pipeline()
    pipe.to(torch.bfloat16)
    for mode in ("text", "img2img", "inpaint"):
        p = pipeline_for(pipe, mode)
        assert p.unet is pipe.unet and p.vae is pipe.vae and p.scheduler is pipe.scheduler
        assert ("XL" in type(p).__name__) == (name == "sdxl")
    assert pipeline_for(pipe, "text") is pipe
    assert {m.dtype for m in (pipe.unet, pipe.vae, pipe.text_encoder)} == {torch.bfloat16}
    with pytest.raises(ValueError, match="mode must be one of"):
        pipeline_for(pipe, "outpaint")
