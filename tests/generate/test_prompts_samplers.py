"""A1111 prompt syntax, prompt building, sampler names and CLIP skip."""

from __future__ import annotations

import re

import diffusers
import pytest

from craftlora.config import Attribute, WorkspaceConfig
from craftlora.generate.prompts import (
    LoraNotFoundError,
    LoraRef,
    PromptSpec,
    PromptSyntaxError,
    build_prompt,
    find_lora_files,
    parse_prompt,
)
from craftlora.generate.samplers import SAMPLERS, make_scheduler, resolve_sampler
from craftlora.models.text import diffusers_clip_skip


def test_single_and_multiple_loras():
    p = parse_prompt("a vase, celadon glaze <lora:glazetype:0.4>")
    assert p.text == "a vase, celadon glaze"
    assert p.loras == (LoraRef("glazetype", unet=0.4, te=0.4),)
    p = parse_prompt("<lora:a:1> bowl, <LORA:b_v2:0.25:0.75>, white <lora:c>")
    assert p.text == "bowl, white"
    assert p.loras == (
        LoraRef("a", 1.0, 1.0),
        LoraRef("b_v2", unet=0.75, te=0.25),
        LoraRef("c", 1.0, 1.0),
    )
    assert parse_prompt("x <lora:n:unet=0.3:te=0>").loras == (LoraRef("n", unet=0.3, te=0.0),)
    assert parse_prompt("x <lora:n:unet=0.3>").loras == (LoraRef("n", unet=0.3, te=1.0),)
    assert parse_prompt("x <lora:n:-0.5>").loras[0].unet == -0.5


def test_emphasis_and_nested_brackets_left_intact():
    prompt = "((moon white:1.2)), [vase], (bowl (tea:0.8)) <lora:x:0.4>, (a<b)"
    p = parse_prompt(prompt)
    assert p.text == "((moon white:1.2)), [vase], (bowl (tea:0.8)), (a<b)"
    assert [r.name for r in p.loras] == ["x"]
    assert parse_prompt("no tags (at:1.1) all").text == "no tags (at:1.1) all"


@pytest.mark.parametrize(
    "bad, match",
    [
        ("a <lora:x:0.4", "not closed"),
        ("a <lora:x:0.4 <lora:y:1>", "not closed"),
        ("a <lora::0.4>", "name"),
        ("a <lora:>", "name"),
        ("a <lora:x:abc>", "'abc' is not a number"),
        ("a <lora:x:0.1:0.2:0.3:0.4>", "too many"),
        ("a <lora:x:foo=1>", "unknown field"),
        ("a <lora:x:0.4> b <lora:x:0.2>", "named twice"),
        ("a <lora:x:nan>", "finite"),
        ("a <lora:x:1:dyn=4>", "dyn"),
    ],
)
def test_malformed_tags_give_clear_errors(bad, match):
    with pytest.raises(PromptSyntaxError, match=match):
        parse_prompt(bad)


def test_error_says_where():
    with pytest.raises(PromptSyntaxError, match="character 6"):
        parse_prompt("vase, <lora:x:zz>")


def test_lora_files_found_or_named(tmp_path):
    (tmp_path / "a.safetensors").write_bytes(b"")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "pytorch_lora_weights.safetensors").write_bytes(b"")
    found = find_lora_files([LoraRef("a", 1, 1), LoraRef("b", 1, 1)], [tmp_path])
    assert found == {
        "a": tmp_path / "a.safetensors",
        "b": tmp_path / "b" / "pytorch_lora_weights.safetensors",
    }
    with pytest.raises(LoraNotFoundError, match=r"'ghost'.*" + str(tmp_path)):
        find_lora_files([LoraRef("a", 1, 1), LoraRef("ghost", 1, 1)], [tmp_path])
    (tmp_path / "pickled.ckpt").write_bytes(b"")
    with pytest.raises(LoraNotFoundError, match="pickle"):
        find_lora_files([LoraRef("pickled", 1, 1)], [tmp_path])


def _cfg():
    return WorkspaceConfig(
        caption_template="{dynasty} dynasty, {kiln} kiln produced, Chinese porcelain, {type}, "
        "with {glaze} glaze, {glaze.phrase}",
        attributes={
            "dynasty": Attribute(values=["Yuan"]),
            "kiln": Attribute(values=["Jun"]),
            "type": Attribute(values=["vase", "bowl"]),
            "glaze": Attribute(
                values=["moon white"], phrases={"moon white": "pale blue, thick opaque glaze"}
            ),
        },
    )


def test_build_prompt_study_form():
    spec = PromptSpec(
        template="{caption}, {function}, {morphology}",
        loras=["<lora:glazetype:0.4>"],
        function={"type": {"vase": "vase for display only", "bowl": "rice bowl for daily meals"}},
        morphology={"type": {"vase": "no spout or handle, decorative vessel"}},
    )
    attrs = {"dynasty": "Yuan", "kiln": "Jun", "type": "vase", "glaze": "moon white"}
    assert build_prompt(_cfg(), attrs, spec) == (
        "Yuan dynasty, Jun kiln produced, Chinese porcelain, vase, with moon white glaze, "
        "pale blue, thick opaque glaze, vase for display only, no spout or handle, "
        "decorative vessel <lora:glazetype:0.4>"
    )
    # no phrase for bowl's morphology: no dangling comma
    attrs["type"] = "bowl"
    assert build_prompt(_cfg(), attrs, spec).count(", ,") == 0
    with pytest.raises(PromptSyntaxError):
        build_prompt(_cfg(), attrs, PromptSpec(loras=["<lora:x:bad>"]))
    with pytest.raises(ValueError, match="unknown attributes"):
        build_prompt(_cfg(), attrs, PromptSpec(function={"colour": {"x": "y"}}))


BASE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "v_prediction",
}


@pytest.mark.parametrize(
    "name, cls, config",
    [
        (
            "DPM++ 2M Karras",
            "DPMSolverMultistepScheduler",
            {"use_karras_sigmas": True, "algorithm_type": "dpmsolver++"},
        ),
        (
            "DPM++ 2M",
            "DPMSolverMultistepScheduler",
            {"use_karras_sigmas": False, "algorithm_type": "dpmsolver++"},
        ),
        (
            "DPM++ 2M SDE Karras",
            "DPMSolverMultistepScheduler",
            {"use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"},
        ),
        (
            "DPM++ 2M SDE",
            "DPMSolverMultistepScheduler",
            {"use_karras_sigmas": False, "algorithm_type": "sde-dpmsolver++"},
        ),
        ("Euler a", "EulerAncestralDiscreteScheduler", {}),
        ("Euler", "EulerDiscreteScheduler", {"use_karras_sigmas": False}),
        ("DDIM", "DDIMScheduler", {}),
        ("UniPC", "UniPCMultistepScheduler", {}),
        ("Heun", "HeunDiscreteScheduler", {}),
        ("LMS Karras", "LMSDiscreteScheduler", {"use_karras_sigmas": True}),
        ("DPM2 a", "KDPM2AncestralDiscreteScheduler", {}),
        ("PLMS", "PNDMScheduler", {}),
    ],
)
def test_sampler_names_map_to_schedulers(name, cls, config):
    s = make_scheduler(name, BASE)
    assert type(s) is getattr(diffusers, cls)
    for k, v in config.items():
        assert s.config[k] == v, k
    # the model's own schedule carries over
    assert s.config.beta_schedule == "scaled_linear"
    assert s.config.prediction_type == "v_prediction"


def test_every_registered_sampler_runs_a_schedule():
    for name in SAMPLERS:
        s = make_scheduler(name, BASE)
        s.set_timesteps(20)
        assert len(s.timesteps) >= 20, name


def test_sampler_aliases_and_unknown():
    assert resolve_sampler("dpmpp_2m_karras").name == "DPM++ 2M Karras"
    assert resolve_sampler("dpm++ 2m sde karras").name == "DPM++ 2M SDE Karras"
    assert resolve_sampler("k_euler_a").name == "Euler a"
    with pytest.raises(ValueError, match=re.escape("unknown sampler 'DPM++ 9M'") + ".*UniPC"):
        resolve_sampler("DPM++ 9M")


def test_clip_skip_a1111_convention():
    assert diffusers_clip_skip(1) is None
    assert diffusers_clip_skip(2) == 1
    assert diffusers_clip_skip(3) == 2
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            diffusers_clip_skip(bad)


def test_clip_skip_selects_the_penultimate_layer(gen_tiny_pipe):
    import torch

    from craftlora.models.text import encode_text

    te, tok = gen_tiny_pipe.text_encoder, gen_tiny_pipe.tokenizer
    ids = tok(
        ["a bowl"], padding="max_length", max_length=tok.model_max_length, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        out = te(ids, output_hidden_states=True)
        penultimate = te.final_layer_norm(out.hidden_states[-2])
    skip2 = encode_text(gen_tiny_pipe, ["a bowl"], diffusers_clip_skip(2))
    last = encode_text(gen_tiny_pipe, ["a bowl"], diffusers_clip_skip(1))
    assert torch.allclose(skip2, penultimate, atol=1e-6)
    assert torch.allclose(last, out[0], atol=1e-6)
    assert not torch.allclose(skip2, last)
    with pytest.raises(ValueError, match="deeper"):
        encode_text(gen_tiny_pipe, ["a bowl"], diffusers_clip_skip(3))


def test_every_sampler_gives_a_seed_the_same_image_batched_or_alone(gen_tiny_pipe):
    """Per-image generators: an image depends on its seed only, even for ancestral/SDE
    samplers (a rerun or a different batch size reproduces it)."""
    import numpy as np
    import torch

    from craftlora.generate.samplers import set_sampler
    from craftlora.models.text import encode_text

    pipe = gen_tiny_pipe
    e = encode_text(pipe, ["a bowl", "a vase"], 1)
    for name in SAMPLERS:
        set_sampler(pipe, name)
        kw = dict(num_inference_steps=4, output_type="np")
        both = pipe(
            prompt_embeds=e,
            negative_prompt_embeds=e,
            generator=[torch.Generator().manual_seed(s) for s in (7, 8)],
            **kw,
        ).images
        alone = pipe(
            prompt_embeds=e[1:],
            negative_prompt_embeds=e[1:],
            generator=[torch.Generator().manual_seed(8)],
            **kw,
        ).images
        assert np.isfinite(both).all(), name
        assert np.abs(both[1] - alone[0]).max() < 1e-4, name
        assert np.abs(both[0] - both[1]).max() > 1e-3, name  # seeds differ -> images differ
