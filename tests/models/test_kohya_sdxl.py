"""SDXL LoRAs in sd-scripts' own names: export, import, diffusers' and ComfyUI's readers.

The module tree is SDXL's (narrow widths, real depths), the adapter covers what sd-scripts'
``networks.lora`` covers with ``conv_dim`` set, and the expected names are written here by
sd-scripts' rule from the SGM UNet layout, not by the code under test.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from diffusers import StableDiffusionXLPipeline
from narrow_sd import attach_sd_scripts_adapter, full_size_models, outputs, sdxl_models
from safetensors.torch import load_file, save_file

from craftlora.models.comfy_keys import comfy_key_map, comfy_unloaded
from craftlora.models.kohya_names import kohya_names, sd_scripts_modules
from craftlora.models.lora import (
    LoraFormatError,
    adapter_config,
    lora_state_dict,
    read_lora_file,
    save_kohya_lora,
)
from craftlora.models.lora_import import load_lora

torch.set_num_threads(1)
CLIP = ("self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj", "self_attn_out_proj",
        "mlp_fc1", "mlp_fc2")


def sgm_transformer_paths() -> list[str]:
    """SDXL's SpatialTransformers (SGM names) and their depths: 2 at 640 channels, 10 at 1280."""
    depth = {"input_blocks.4.1": 2, "input_blocks.5.1": 2, "input_blocks.7.1": 10,
             "input_blocks.8.1": 10, "middle_block.1": 10}
    depth |= {f"output_blocks.{i}.1": 10 for i in (0, 1, 2)}
    depth |= {f"output_blocks.{i}.1": 2 for i in (3, 4, 5)}
    paths = []
    for st, n in depth.items():
        paths += [f"{st}.proj_in", f"{st}.proj_out"]
        for t in range(n):
            block = f"{st}.transformer_blocks.{t}"
            paths += [f"{block}.{a}.{p}" for a in ("attn1", "attn2")
                      for p in ("to_q", "to_k", "to_v", "to_out.0")]
            paths += [f"{block}.ff.net.0.proj", f"{block}.ff.net.2"]
    return paths


def sgm_conv_paths() -> list[str]:
    """Resnet layers (with a skip conv where the channel count changes) and the samplers."""
    res = [f"input_blocks.{i}.0" for i in (1, 2, 4, 5, 7, 8)] + ["middle_block.0", "middle_block.2"]
    res += [f"output_blocks.{i}.0" for i in range(9)]
    layers = ("in_layers.2", "emb_layers.1", "out_layers.3")
    paths = [f"{r}.{layer}" for r in res for layer in layers]
    paths += [f"{r}.skip_connection" for r in res
              if r in ("input_blocks.4.0", "input_blocks.7.0") or r.startswith("output_blocks")]
    return paths + ["input_blocks.3.0.op", "input_blocks.6.0.op", "output_blocks.2.2.conv",
                    "output_blocks.5.2.conv"]


def kohya(prefix: str, paths: list[str]) -> set[str]:
    return {f"{prefix}_{p.replace('.', '_')}" for p in paths}


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    d = tmp_path_factory.mktemp("sdxl")
    base = sdxl_models(seed=0)
    trained = copy.deepcopy(base)
    attach_sd_scripts_adapter(trained, seed=10)
    parts = {p: (lora_state_dict(m), adapter_config(m)) for p, m in trained.items()}
    cfg = trained["unet"].config
    save_kohya_lora(d / "sdxl.safetensors", parts, unet_config=cfg, metadata={"ss_seed": 3})
    save_kohya_lora(d / "sdxl_fp16.safetensors", parts, unet_config=cfg, dtype=torch.float16)
    save_kohya_lora(d / "sdxl_diffusers.safetensors", parts, unet_config=cfg, layout="diffusers")
    return d, base, outputs(base), outputs(trained)


def test_export_writes_exactly_sd_scripts_sdxl_names_and_alphas(sdxl):
    d, *_ = sdxl
    sd, meta = read_lora_file(d / "sdxl.safetensors")
    names = {k.split(".")[0] for k in sd}
    linear = kohya("lora_unet", sgm_transformer_paths())
    assert len(linear) == 722  # sd-scripts: "create LoRA for U-Net: 722 modules"
    te1 = {f"lora_te1_text_model_encoder_layers_{i}_{c}" for i in range(12) for c in CLIP}
    te2 = {f"lora_te2_text_model_encoder_layers_{i}_{c}" for i in range(32) for c in CLIP}
    assert len(te1) + len(te2) == 264  # "create LoRA for Text Encoder: 264 modules"
    conv = kohya("lora_unet", sgm_conv_paths())
    assert names == linear | conv | te1 | te2
    assert all(set(k.split(".", 1)[1] for k in sd if k.startswith(n + "."))
               == {"lora_down.weight", "lora_up.weight", "alpha"} for n in names)
    # alpha as trained, per module; the 3×3 convs (17 resnets × 2, 2 ops, 2 upsamplers) have
    # the conv rank and alpha, emb_layers (Linear) and skip connections (1×1) the linear ones
    is_3x3 = {n for n in names if sd[f"{n}.lora_down.weight"].shape[2:] == (3, 3)}
    assert len(is_3x3) == 17 * 2 + 4
    for n in names:
        rank, alpha = (2, 1.0) if n in is_3x3 else (4, 8.0 if n.startswith("lora_unet") else 2.0)
        assert sd[f"{n}.lora_down.weight"].shape[0] == rank and float(sd[f"{n}.alpha"]) == alpha
    assert sd["lora_unet_input_blocks_3_0_op.lora_down.weight"].shape[1:] == (32, 3, 3)
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0" and meta["ss_v2"] == "False"
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "Dynamic"  # 8 vs 2
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "2", "conv_alpha": "1.0"}
    assert json.loads(meta["craftlora_network_parts"])["unet"]["linear_alphas"] == [8.0]
    assert meta["ss_seed"] == "3"


@pytest.mark.parametrize("name", ["sdxl", "sdxl_fp16", "sdxl_diffusers"])
def test_sd_scripts_sdxl_file_imports_to_the_adapter_outputs(sdxl, name):
    d, base, plain, reference = sdxl
    assert all((reference[p] - plain[p]).abs().max() > 1e-2 for p in plain)  # the LoRA matters
    models = copy.deepcopy(base)
    parts = load_lora(models, d / f"{name}.safetensors", adapter_name="k")
    assert set(parts) == {"unet", "text_encoder", "text_encoder_2"}
    got = outputs(models)
    for p in reference:
        assert (got[p] - reference[p]).abs().max().item() <= 1e-5, p


def test_diffusers_reader_takes_the_sd_scripts_names_too(sdxl):
    """Generation loads LoRAs through diffusers' own reader: the default export must suit it."""
    d, base, _, reference = sdxl
    models = copy.deepcopy(base)
    sd, alphas = StableDiffusionXLPipeline.lora_state_dict(
        str(d / "sdxl.safetensors"), unet_config=models["unet"].config)
    StableDiffusionXLPipeline.load_lora_into_unet(sd, alphas, unet=models["unet"])
    for part in ("text_encoder", "text_encoder_2"):
        StableDiffusionXLPipeline.load_lora_into_text_encoder(
            sd, alphas, text_encoder=models[part], prefix=part)
    got = outputs(models)
    for p in reference:
        assert (got[p] - reference[p]).abs().max().item() <= 1e-5, p


@pytest.mark.parametrize("name", ["sdxl", "sdxl_diffusers"])
def test_comfyui_key_map_leaves_no_key(sdxl, name):
    d, base, *_ = sdxl
    sd = load_file(str(d / f"{name}.safetensors"))
    assert comfy_unloaded(sd, base) == []
    # and it does report what it cannot place
    stray = {"lora_unet_nowhere.alpha": torch.tensor(1.0),
             "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight":
                 torch.zeros(7, 4)}
    assert sorted(comfy_unloaded(stray, base)) == sorted(stray)


def test_bad_files_name_the_file_and_the_fault(sdxl, tmp_path):
    d, base, *_ = sdxl
    sd = load_file(str(d / "sdxl.safetensors"))
    q = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"
    cases = {
        "loha": ({f"{q}.hada_w1_a": torch.zeros(4, 64)}, "LoHa"),
        "alien": ({"lora_unet_input_blocks_99_1_proj_in.lora_down.weight": torch.zeros(4, 64),
                   "lora_unet_input_blocks_99_1_proj_in.lora_up.weight": torch.zeros(64, 4)},
                  "matches no layer"),
        "shape": ({f"{q}.lora_down.weight": torch.zeros(4, 65),
                   f"{q}.lora_up.weight": sd[f"{q}.lora_up.weight"]}, "does not fit"),
        "half": ({f"{q}.lora_down.weight": sd[f"{q}.lora_down.weight"]}, "both lora_down"),
    }
    for name, (tensors, fault) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path))
        with pytest.raises(LoraFormatError, match=rf"{name}\.safetensors.*{fault}"):
            load_lora(copy.deepcopy({"unet": base["unet"]}), path)


def test_full_size_sdxl_tree_has_the_same_names():
    """The released SDXL architecture (meta device): sd-scripts' names by rule, and ComfyUI
    places every one of them."""
    models = full_size_models("sdxl")
    assert sum(p.numel() for p in models["unet"].parameters()) > 2.5e9  # the 2.6 B UNet
    names = set()
    for part, model in models.items():
        mods = sd_scripts_modules(model, conv=part == "unet")
        names |= set(kohya_names(part, mods, unet_config=models["unet"].config).values())
    te = {f"lora_te{n}_text_model_encoder_layers_{i}_{c}"
          for n, layers in ((1, 12), (2, 32)) for i in range(layers) for c in CLIP}
    assert names == kohya("lora_unet", sgm_transformer_paths() + sgm_conv_paths()) | te
    key_map = comfy_key_map(models)
    assert names <= set(key_map)
    assert key_map["lora_unet_input_blocks_4_1_proj_in"] == (
        "diffusion_model.input_blocks.4.1.proj_in.weight", (640, 640))
