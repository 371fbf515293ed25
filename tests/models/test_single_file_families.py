"""SD 1.5, SD 2.x and SDXL single files load offline through the one loader, weights exact."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from tiny_families import build_family, config_copy

from craftlora.models.family import (
    CONFIGS,
    CheckpointInfo,
    CheckpointLayoutError,
    config_for,
    inspect_checkpoint,
)
from craftlora.models.ldm_families import save_family_checkpoint
from craftlora.models.loader import ModelSourceError, load_components, locate_source
from craftlora.models.presets import model_family

torch.set_num_threads(1)
FAMILIES = ("sd15", "sd2", "sdxl")


@pytest.fixture(scope="module", params=FAMILIES)
def made(request, tmp_path_factory):
    family = request.param
    root = tmp_path_factory.mktemp(family)
    pipe, folder = build_family(family, root)
    ckpt = save_family_checkpoint(family, pipe.unet, pipe.vae, pipe.text_encoder,
                                  root / f"{family}.safetensors",
                                  text_encoder_2=getattr(pipe, "text_encoder_2", None))
    return family, pipe, folder, ckpt, root


def _images(pipe) -> torch.Tensor:
    return pipe("a red vase", num_inference_steps=2, height=32, width=32, output_type="pt",
                generator=torch.Generator().manual_seed(0)).images


def test_family_read_from_the_header(made):
    family, pipe, _, ckpt, _ = made
    info = inspect_checkpoint(ckpt)
    assert info.family == family and model_family(ckpt) == family
    assert info.context_dim == pipe.unet.config.cross_attention_dim
    assert info.model_channels == 16
    assert info.text_width == (48 if family == "sdxl" else 32)
    found = locate_source(ckpt, config=made[2], allow_network=False)
    assert found.family == ("sdxl" if family == "sdxl" else "sd")
    with pytest.raises(ModelSourceError, match="not those of the shipped"):
        locate_source(ckpt, allow_network=False)  # before any weight is read


def test_single_file_loads_offline_with_exact_weights_and_images(made, monkeypatch):
    family, pipe, folder, ckpt, root = made
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = config_copy(folder, root / "config")
    loaded = load_components(ckpt, config=config, allow_network=False)
    assert loaded.kind == ("sdxl" if family == "sdxl" else "sd")
    assert loaded.prediction_type == ("v_prediction" if family == "sd2" else "epsilon")
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        want = getattr(pipe, name, None)
        if want is None:
            assert getattr(loaded, name) is None
            continue
        got = getattr(loaded, name).state_dict()
        assert want.state_dict().keys() == got.keys(), name
        for k, t in want.state_dict().items():
            assert torch.equal(t, got[k]), f"{name}.{k}"
    reference = _images(pipe)
    assert reference.std() > 0.01
    torch.testing.assert_close(_images(loaded.pipeline(pipe.scheduler)), reference, atol=0, rtol=0)


def test_tokenizer_from_its_own_folder_when_the_config_has_none(made):
    family, _, folder, ckpt, root = made
    config = config_copy(folder, root / "config-novocab", vocab=False)
    with pytest.raises(ModelSourceError, match=rf"{ckpt.name}: .*no tokenizer.*--tokenizer DIR"):
        load_components(ckpt, config=config, allow_network=False)
    loaded = load_components(ckpt, config=config, tokenizer=root / "tok", allow_network=False)
    ids = loaded.tokenizer("a red vase").input_ids
    assert ids == load_components(folder).tokenizer("a red vase").input_ids
    if family == "sdxl":
        assert loaded.tokenizer_2 is not None


def test_prediction_type_override(made):
    family, _, folder, ckpt, root = made
    if family != "sd2":
        pytest.skip("one family is enough")
    comp = load_components(ckpt, config=config_copy(folder, root / "config-pt"),
                           prediction_type="epsilon", allow_network=False)
    assert comp.prediction_type == "epsilon"
    assert comp.pipeline().scheduler.config.prediction_type == "epsilon"
    with pytest.raises(ValueError, match="prediction type must be one of"):
        load_components(ckpt, prediction_type="sample", allow_network=False)


def test_sizes_that_match_no_shipped_config_are_named(made):
    _, _, _, ckpt, _ = made
    with pytest.raises(ModelSourceError, match=rf"{ckpt.name}: .*not those of the shipped"):
        load_components(ckpt, allow_network=False)


def test_shipped_configs_fit_the_full_size_layouts():
    sizes = {"sd15": (768, 768, "sd15"), "sd2": (1024, 1024, "sd2-768-v"),
             "sdxl": (2048, 1280, "sdxl-base")}
    for family, (context, text, folder) in sizes.items():
        info = CheckpointInfo("x.safetensors", family, context, 320, text)
        assert config_for(info).name == folder
    assert config_for(CheckpointInfo("x", "sd2", 1024, 320, 1024), "epsilon").name == "sd2-512"
    sched = json.loads((CONFIGS / "sd2-768-v" / "scheduler" / "scheduler_config.json").read_text())
    assert sched["prediction_type"] == "v_prediction"
    with pytest.raises(CheckpointLayoutError, match="not those of the shipped sd15"):
        config_for(CheckpointInfo("x.safetensors", "sd15", 1024, 320, 768))


def test_shipped_configs_build_the_published_parameter_counts():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    def count(m) -> int:
        return sum(p.numel() for p in m.parameters())

    unet = {"sd15": 859_520_964, "sd2-512": 865_910_724, "sd2-768-v": 865_910_724,
            "sdxl-base": 2_567_463_684}
    text = {"sd15": 123_060_480, "sd2-512": 340_387_840, "sd2-768-v": 340_387_840,
            "sdxl-base": 123_060_480}
    with torch.device("meta"):
        for name in unet:
            d = CONFIGS / name
            assert count(UNet2DConditionModel.from_config(
                UNet2DConditionModel.load_config(d / "unet"))) == unet[name], name
            assert count(AutoencoderKL.from_config(
                AutoencoderKL.load_config(d / "vae"))) == 83_653_863, name
            assert count(CLIPTextModel(CLIPTextConfig.from_pretrained(d / "text_encoder"))) \
                == text[name], name
        te2 = CLIPTextConfig.from_pretrained(CONFIGS / "sdxl-base" / "text_encoder_2")
        assert count(CLIPTextModelWithProjection(te2)) == 694_659_840


def test_unknown_layouts_and_pickles_are_refused_naming_the_file(tmp_path):
    odd = tmp_path / "odd.safetensors"
    save_file({"some.weight": torch.zeros(2)}, str(odd))
    with pytest.raises(ModelSourceError, match=r"odd\.safetensors: unknown checkpoint layout"):
        load_components(odd, allow_network=False)
    unet_only = tmp_path / "unet_only.safetensors"
    save_file({"cond_stage_model.transformer.text_model.embeddings.token_embedding.weight":
               torch.zeros(4, 2), "model.diffusion_model.x.weight": torch.zeros(1)}, str(unet_only))
    with pytest.raises(ModelSourceError, match=r"unet_only\.safetensors: no VAE tensors"):
        load_components(unet_only, allow_network=False)
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not read")
    with pytest.raises(ModelSourceError, match=r"model\.ckpt: pickle.*convert"):
        load_components(ckpt, allow_network=False)


@pytest.mark.parametrize("name", ["sd15", "sd2-768-v", "sdxl-base"])
def test_full_size_layouts_convert_into_the_shipped_configs(name):
    """At full size (meta tensors, no memory): a model built from a shipped config, written in
    LDM names, is read back by diffusers' converters into exactly that model's tensors, and its
    header picks the same config."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from craftlora.models.family import checkpoint_info
    from craftlora.models.ldm_families import family_to_ldm

    d = CONFIGS / name
    family = {"sd15": "sd15", "sd2-768-v": "sd2", "sdxl-base": "sdxl"}[name]
    with torch.device("meta"):
        unet_cfg = UNet2DConditionModel.load_config(d / "unet")
        unet = UNet2DConditionModel.from_config(unet_cfg)
        vae_cfg = AutoencoderKL.load_config(d / "vae")
        vae = AutoencoderKL.from_config(vae_cfg)
        te = CLIPTextModel(CLIPTextConfig.from_pretrained(d / "text_encoder"))
        te2 = (CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(d / "text_encoder_2"))
               if family == "sdxl" else None)
    ldm = family_to_ldm(family, unet, vae, te, te2)
    shapes = {k: list(t.shape) for k, t in ldm.items()}
    info = checkpoint_info(f"{name}.safetensors", shapes)
    assert info.family == family and config_for(info).name == name

    def same(model, converted):
        want = {k: list(t.shape) for k, t in model.state_dict().items()
                if not k.endswith("position_ids")}
        got = {k.removeprefix("text_model.") if not hasattr(model, "text_model") else k:
               list(t.shape) for k, t in converted.items()}
        assert got == want

    same(unet, convert_ldm_unet_checkpoint(ldm, unet_cfg))
    same(vae, convert_ldm_vae_checkpoint(ldm, vae_cfg))
    if family == "sd15":
        same(te, convert_ldm_clip_checkpoint(ldm))
    elif family == "sd2":
        same(te, convert_open_clip_checkpoint(te, ldm, prefix="cond_stage_model.model."))
    else:
        same(te, convert_ldm_clip_checkpoint(ldm))
        same(te2, convert_open_clip_checkpoint(te2, ldm, prefix="conditioner.embedders.1.model."))


def test_a_config_of_other_sizes_is_named(tmp_path):
    """An SD 1.5-layout file read with the configs of another (SD 2-style) model: one error."""
    pipe, _ = build_family("sd15", tmp_path / "a")
    ckpt = save_family_checkpoint("sd15", pipe.unet, pipe.vae, pipe.text_encoder,
                                  tmp_path / "a.safetensors")
    _, other = build_family("sd2", tmp_path / "b")
    with pytest.raises(ModelSourceError, match=r"a\.safetensors: does not load with the configs"):
        load_components(ckpt, config=config_copy(other, tmp_path / "cfg"), allow_network=False)


def test_single_file_options_on_a_folder_are_refused(made):
    _, _, folder, _, root = made
    with pytest.raises(ModelSourceError, match="for single-file checkpoints"):
        load_components(folder, tokenizer=root / "tok")
