"""SD 1.x / 2.x LoRAs as sd-scripts writes them, and as other tools spell them (LDM names, fp16,
no ``.alpha``, LoCon convs), on SD 1.5's narrow module tree; SD 2.x metadata.

Expected names and the LDM spelling are written here by rule, not by the code under test.
"""

from __future__ import annotations

import copy
import json
import re

import pytest
import torch
from narrow_sd import (
    attach_sd_scripts_adapter,
    full_size_models,
    outputs,
    randomize_lora,
    sd15_models,
    sd21_unet,
)
from safetensors.torch import load_file, save_file

from craftlora.models.comfy_keys import comfy_key_map, comfy_unloaded
from craftlora.models.kohya_names import kohya_names, sd_scripts_modules
from craftlora.models.lora import (
    UNET_ATTENTION,
    adapter_config,
    add_lora,
    lora_state_dict,
    read_lora_file,
    save_kohya_lora,
    select_modules,
)
from craftlora.models.lora_import import load_lora

torch.set_num_threads(1)
CLIP = ("self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj", "self_attn_out_proj",
        "mlp_fc1", "mlp_fc2")
TRANSFORMERS = ([f"down_blocks.{b}.attentions.{j}" for b in range(3) for j in range(2)]
                + ["mid_block.attentions.0"]
                + [f"up_blocks.{b}.attentions.{j}" for b in (1, 2, 3) for j in range(3)])
RESNETS = ([f"down_blocks.{b}.resnets.{j}" for b in range(4) for j in range(2)]
           + ["mid_block.resnets.0", "mid_block.resnets.1"]
           + [f"up_blocks.{b}.resnets.{j}" for b in range(4) for j in range(3)])


def sd15_paths(conv: bool) -> list[str]:
    """sd-scripts' SD 1.x targets under their diffusers paths (its SD 1.x UNet uses them)."""
    paths = []
    for st in TRANSFORMERS:
        block = f"{st}.transformer_blocks.0"
        paths += [f"{st}.proj_in", f"{st}.proj_out", f"{block}.ff.net.0.proj", f"{block}.ff.net.2"]
        paths += [f"{block}.{a}.{p}" for a in ("attn1", "attn2")
                  for p in ("to_q", "to_k", "to_v", "to_out.0")]
    if conv:
        paths += [f"{r}.{c}" for r in RESNETS for c in ("conv1", "time_emb_proj", "conv2")]
        paths += [f"{r}.conv_shortcut" for r in RESNETS  # where the channel count changes
                  if r in ("down_blocks.1.resnets.0", "down_blocks.2.resnets.0")
                  or r.startswith("up_blocks")]
        paths += [f"down_blocks.{b}.downsamplers.0.conv" for b in range(3)]
        paths += [f"up_blocks.{b}.upsamplers.0.conv" for b in range(3)]
    return paths


_LDM_RESNET = {"conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "conv2": "out_layers.3",
               "conv_shortcut": "skip_connection"}


def ldm_name(name: str) -> str:
    """An SD 1.x kohya name in LDM spelling (``input_blocks`` …), the rule of the original UNet:
    3 input blocks per level (2 layers + the downsampler), 3 output blocks per level."""
    short = name.removeprefix("lora_unet_")
    m = re.fullmatch(r"(down|up)_blocks_(\d)_(attentions|resnets)_(\d)_(.+)", short)
    if m:
        b, j, rest = int(m[2]), int(m[4]), m[5]
        block = f"input_blocks_{1 + 3 * b + j}" if m[1] == "down" else f"output_blocks_{3 * b + j}"
        inner = f"1_{rest}" if m[3] == "attentions" else f"0_{_LDM_RESNET[rest]}"
        return f"lora_unet_{block}_{inner}".replace(".", "_")
    m = re.fullmatch(r"mid_block_(attentions|resnets)_(\d)_(.+)", short)
    if m:
        j, rest = int(m[2]), m[3]
        inner = f"1_{rest}" if m[1] == "attentions" else f"{2 * j}_{_LDM_RESNET[rest]}"
        return f"lora_unet_middle_block_{inner}".replace(".", "_")
    if m := re.fullmatch(r"down_blocks_(\d)_downsamplers_0_conv", short):
        return f"lora_unet_input_blocks_{3 * int(m[1]) + 3}_0_op"
    if m := re.fullmatch(r"up_blocks_(\d)_upsamplers_0_conv", short):
        b = int(m[1])  # after the resnet, and the attention where the level has one (not level 0)
        return f"lora_unet_output_blocks_{3 * b + 2}_{1 if b == 0 else 2}_conv"
    return name


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    d = tmp_path_factory.mktemp("sd15")
    base = sd15_models(seed=0)
    trained = copy.deepcopy(base)
    attach_sd_scripts_adapter(trained, seed=20)
    same = copy.deepcopy(base)  # alpha = rank everywhere: a file without .alpha means the same
    attach_sd_scripts_adapter(same, seed=30, rank=4, alpha=4.0, te_alpha=4.0, conv_rank=2,
                              conv_alpha=2.0)
    cfg = base["unet"].config
    for name, models, dtype in (("sd15", trained, None), ("same", same, torch.float16)):
        parts = {p: (lora_state_dict(m), adapter_config(m)) for p, m in models.items()}
        save_kohya_lora(d / f"{name}.safetensors", parts, unet_config=cfg, dtype=dtype)
    sd = load_file(str(d / "sd15.safetensors"))
    save_file({ldm_name(k.split(".")[0]) + "." + k.split(".", 1)[1]: v for k, v in sd.items()},
              str(d / "ldm.safetensors"))
    same_sd = load_file(str(d / "same.safetensors"))
    save_file({k: v for k, v in same_sd.items() if not k.endswith(".alpha")},
              str(d / "no_alpha.safetensors"))
    return d, base, outputs(base), outputs(trained), outputs(same)


def test_export_writes_exactly_sd_scripts_sd15_names_and_alphas(sd15):
    d, *_ = sd15
    sd, meta = read_lora_file(d / "sd15.safetensors")
    names = {k.split(".")[0] for k in sd}
    linear = {"lora_unet_" + p.replace(".", "_") for p in sd15_paths(conv=False)}
    assert len(linear) == 192  # sd-scripts: "create LoRA for U-Net: 192 modules"
    te = {f"lora_te_text_model_encoder_layers_{i}_{c}" for i in range(12) for c in CLIP}
    assert len(te) == 72  # "create LoRA for Text Encoder: 72 modules"
    unet = {"lora_unet_" + p.replace(".", "_") for p in sd15_paths(conv=True)}
    assert names == unet | te
    for n in names:
        is_3x3 = sd[f"{n}.lora_down.weight"].shape[2:] == (3, 3)
        rank, alpha = (2, 1.0) if is_3x3 else (4, 8.0 if n.startswith("lora_unet") else 2.0)
        assert sd[f"{n}.lora_down.weight"].shape[0] == rank and float(sd[f"{n}.alpha"]) == alpha
    # SD 1.x's proj_in is a 1×1 conv: its LoRA is a 1×1 conv too, at the linear rank
    proj_in = "lora_unet_down_blocks_0_attentions_0_proj_in"
    assert sd[f"{proj_in}.lora_down.weight"].shape == (4, 32, 1, 1)
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_v2"] == "False"
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "2", "conv_alpha": "1.0"}


@pytest.mark.parametrize("name", ["sd15", "ldm"])
def test_sd_scripts_and_ldm_spellings_import_to_the_adapter_outputs(sd15, name):
    d, base, plain, reference, _ = sd15
    assert all((reference[p] - plain[p]).abs().max() > 1e-2 for p in plain)  # the LoRA matters
    if name == "ldm":  # the rule really renamed the UNet modules
        keys = load_file(str(d / "ldm.safetensors"))
        assert "lora_unet_output_blocks_2_1_conv.alpha" in keys
        assert not any("down_blocks" in k or "up_blocks" in k for k in keys)
    models = copy.deepcopy(base)
    load_lora(models, d / f"{name}.safetensors")
    got = outputs(models)
    for p in reference:
        assert (got[p] - reference[p]).abs().max().item() <= 1e-5, p


def test_fp16_file_without_alpha_loads_with_alpha_equal_to_rank(sd15):
    d, base, _, _, same = sd15
    sd = load_file(str(d / "no_alpha.safetensors"))
    assert {v.dtype for v in sd.values()} == {torch.float16}
    assert not any(k.endswith(".alpha") for k in sd)
    models = copy.deepcopy(base)
    parts = load_lora(models, d / "no_alpha.safetensors")
    cfg = parts["unet"][1]
    assert cfg["lora_alpha"] == 4.0 and set(cfg["alpha_pattern"].values()) == {2.0}
    got = outputs(models)
    for p in same:
        assert (got[p] - same[p]).abs().max().item() <= 1e-5, p


@pytest.mark.parametrize("name", ["sd15", "ldm"])
def test_comfyui_key_map_leaves_no_key(sd15, name):
    d, base, *_ = sd15
    assert comfy_unloaded(load_file(str(d / f"{name}.safetensors")), base) == []


@pytest.mark.parametrize(("prediction", "version"),
                         [("epsilon", "sd_v2"), ("v_prediction", "sd_v2_768_v")])
def test_sd2_metadata_says_v2_and_the_file_imports(tmp_path, prediction, version):
    base = {"unet": sd21_unet()}
    unet = copy.deepcopy(base["unet"])
    add_lora(unet, rank=2, alpha=3.0, targets=UNET_ATTENTION)
    randomize_lora(unet, 0)
    path = save_kohya_lora(tmp_path / "sd2.safetensors",
                           {"unet": (lora_state_dict(unet), adapter_config(unet))},
                           unet_config=unet.config, prediction_type=prediction)
    _, meta = read_lora_file(path)
    assert meta["ss_v2"] == "True" and meta["ss_base_model_version"] == version
    assert meta["ss_network_dim"] == "2" and meta["ss_network_alpha"] == "3.0"
    assert meta["ss_network_train_unet_only"] == "True" and "ss_network_args" not in meta
    reference = outputs({"unet": unet})["unet"]
    load_lora(base, path)
    assert (outputs(base)["unet"] - reference).abs().max().item() <= 1e-5


def test_a_second_lora_loads_beside_the_first(sd15):
    """Generation stacks LoRAs: the names still resolve once peft has wrapped the layers."""
    d, base, plain, reference, _ = sd15
    models = copy.deepcopy(base)
    load_lora(models, d / "sd15.safetensors", adapter_name="a")
    load_lora(models, d / "ldm.safetensors", adapter_name="b")  # the same weights, other names
    models["unet"].set_adapters(["a", "b"], weights=[0.25, 0.75])  # 0.25·Δ + 0.75·Δ = Δ
    models["text_encoder"].set_adapter("b")
    got = outputs(models)
    for p in reference:
        assert (got[p] - reference[p]).abs().max().item() <= 1e-5, p
    models["unet"].set_adapters(["a", "b"], weights=[0.0, 0.0])
    assert (outputs(models)["unet"] - plain["unet"]).abs().max().item() <= 1e-5


def test_full_size_sd15_tree_has_the_same_names():
    """The released SD 1.5 architecture (meta device): sd-scripts' names by rule; ComfyUI places
    every one under both UNet spellings."""
    models = full_size_models("sd15")
    assert 8.5e8 < sum(p.numel() for p in models["unet"].parameters()) < 8.7e8  # 860 M
    names = set()
    for part, model in models.items():
        mods = sd_scripts_modules(model, conv=part == "unet")
        names |= set(kohya_names(part, mods, unet_config=models["unet"].config).values())
    te = {f"lora_te_text_model_encoder_layers_{i}_{c}" for i in range(12) for c in CLIP}
    assert names == {"lora_unet_" + p.replace(".", "_") for p in sd15_paths(conv=True)} | te
    key_map = comfy_key_map(models)
    assert names <= set(key_map) and {ldm_name(n) for n in names} <= set(key_map)
    assert key_map["lora_unet_down_blocks_1_attentions_0_proj_in"] == (
        "diffusion_model.input_blocks.4.1.proj_in.weight", (640, 640, 1, 1))


def test_sd_scripts_target_preset_covers_what_sd_scripts_wraps():
    """``target_modules = ["sd-scripts+conv"]`` in a train config trains sd-scripts' module set."""
    models = sd15_models()
    up1 = select_modules(models["unet"], ["sd-scripts"], [r"^up_blocks\.1\."])
    assert len(up1) == 3 * 12 and all(m.startswith("up_blocks.1.attentions.") for m in up1)
    unet = add_lora(models["unet"], rank=4, alpha=4.0, targets=["sd-scripts+conv"])
    assert {"lora_unet_" + m.replace(".", "_") for m in unet} == {
        "lora_unet_" + p.replace(".", "_") for p in sd15_paths(conv=True)}
    te = add_lora(models["text_encoder"], rank=4, alpha=4.0, targets=["sd-scripts", "fc1"])
    assert len(te) == 72
