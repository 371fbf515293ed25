"""Aspect-ratio buckets and SDXL per-image size conditioning in training."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from craftlora.catalog.workspace import Workspace
from craftlora.config import WorkspaceConfig
from craftlora.models.loader import Components
from craftlora.models.tiny import BASE_CORPUS, TinySpec, build_scheduler, build_vae
from craftlora.models.tokenizer import build_clip_tokenizer, load_clip_tokenizer
from craftlora.train.buckets import (
    assign_bucket,
    bucket_resolutions,
    cover_crop,
    sdxl_conditioning,
)
from craftlora.train.config import DataSettings, TrainConfigError, load_train_config
from craftlora.train.steps import BucketOrder
from craftlora.train.trainer import train

torch.set_num_threads(1)
SIZES = [(48, 32), (32, 48), (32, 32), (48, 32), (64, 24), (40, 32)]  # (w, h)
BUCKETS = {"data.buckets": True, "data.min_bucket_reso": 16, "data.max_bucket_reso": 64,
           "data.bucket_reso_steps": 8}


def test_bucket_list_is_kohyas_for_sd_512():
    got = bucket_resolutions(512, 256, 1024, 64)
    assert got == [(256, 832), (256, 896), (256, 960), (256, 1024), (320, 704), (320, 768),
                   (384, 640), (448, 576), (512, 512), (576, 448), (640, 384), (704, 320),
                   (768, 320), (832, 256), (896, 256), (960, 256), (1024, 256)]
    assert all(w * h <= 512 * 512 and w % 64 == h % 64 == 0 for w, h in got)
    assert all(w * h <= 1024 * 1024 for w, h in bucket_resolutions(1024, 512, 2048, 64))


def test_nearest_aspect_ratio_and_no_upscale():
    data = DataSettings(workspace=Path("."), buckets=True)
    b = bucket_resolutions(512, 256, 1024, 64)
    assert assign_bucket((1200, 600), b, data) == (704, 320)  # w/h 2.2 is nearest 2.0
    assert assign_bucket((600, 1800), b, data) == (256, 832)  # 0.308 nearest 0.333
    assert assign_bucket((700, 700), b, data) == (512, 512)
    keep = DataSettings(workspace=Path("."), buckets=True, bucket_no_upscale=True)
    assert assign_bucket((300, 200), b, keep) == (256, 192)  # small: own size, never enlarged
    assert assign_bucket((2000, 1000), b, keep) == (704, 320)  # large: area cut to 512²


def test_crop_geometry_and_sdxl_conditioning():
    assert cover_crop((100, 60), (64, 32), True) == ((64, 38), (0, 3))
    assert cover_crop((60, 100), (32, 32), False) == ((32, 53), (0, 0))
    assert sdxl_conditioning((100, 60), (64, 32), True, False).tolist() == [60, 100, 3, 0, 32, 64]
    # the square path's old fixed (res, res, 0, 0, res, res) only for a square image
    assert sdxl_conditioning((32, 32), (32, 32), True, False).tolist() == [32, 32, 0, 0, 32, 32]
    # a flipped crop is measured from the mirrored side
    assert sdxl_conditioning((90, 30), (30, 30), False, True).tolist() == [30, 90, 0, 60, 30, 30]


def test_config_checks_the_bucket_range(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('model = "mini"\noutput_dir = "o"\n[data]\nworkspace = "w"\nresolution = 32\n'
                 'buckets = true\nmin_bucket_reso = 64\n')
    with pytest.raises(TrainConfigError, match="min_bucket_reso"):
        load_train_config(p)


def test_bucket_order_batches_keep_to_one_bucket():
    bucket_of = [(8, 8)] * 5 + [(16, 8)] * 3 + [(8, 16)]
    order = BucketOrder(bucket_of, batch=2, seed=1)
    assert order.per_epoch == 3 + 2 + 1
    for epoch in range(3):
        seen = set()
        for g in range(order.per_epoch):
            group = [order[(epoch * order.per_epoch + g) * 2 + s] for s in range(2)]
            assert len({bucket_of[i] for i in group}) == 1
            seen |= set(group)
        assert seen == set(range(9))  # every image once per epoch (short batches refilled)
    again = BucketOrder(bucket_of, batch=2, seed=1)
    assert [again[p] for p in range(40)] == [order[p] for p in range(40)]
    other = BucketOrder(bucket_of, batch=2, seed=2)
    assert [other[p] for p in range(40)] != [order[p] for p in range(40)]


def _workspace(root: Path) -> Path:
    from tiny_train import make_image

    ws = Workspace.create(root, WorkspaceConfig())
    (root / "images").mkdir()
    for i, (w, h) in enumerate(SIZES):
        p = root / "images" / f"{i:03d}.png"
        colour, shape = ("red", "blue", "green")[i % 3], ("vase", "bowl")[i % 2]
        make_image(colour, shape, max(w, h), i).resize((w, h)).save(p)
        ws.catalog.add_image(sha256=hashlib.sha256(p.read_bytes()).hexdigest(),
                             path=f"images/{p.name}", width=w, height=h, split="train",
                             caption=f"a {colour} {shape}")
    ws.close()
    return root


@pytest.fixture
def wide_workspace(tmp_path) -> Path:
    return _workspace(tmp_path / "ws")


def _cfg(tmp_path, model, ws, name, **over):
    from tiny_train import write_config

    return load_train_config(write_config(tmp_path / f"{name}.toml", model, ws, tmp_path / name,
                                          **{**BUCKETS, **over}))


def test_buckets_train_record_and_cache(tiny_model_dir, wide_workspace, tmp_path):
    res = train(_cfg(tmp_path, tiny_model_dir, wide_workspace, "a", max_steps=2,
                     checkpoint_every=5, **{"data.random_flip": True}))
    got = {tuple(b["resolution"]): b["count"] for b in res["buckets"]["buckets"].values()}
    assert got == {(40, 24): 2, (24, 40): 1, (32, 32): 2, (48, 16): 1}  # 40×32 → square
    assert res["cache"] == {"latent_hits": 0, "latent_encoded": 12}
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["buckets"] == res["buckets"]
    with safe_open(str(tmp_path / "a" / "t.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["ss_enable_bucket"] == "True"
    assert json.loads(meta["ss_bucket_info"]) == res["buckets"]
    again = train(_cfg(tmp_path, tiny_model_dir, wide_workspace, "b", max_steps=1,
                       checkpoint_every=5, **{"data.random_flip": True}))
    assert again["cache"] == {"latent_hits": 12, "latent_encoded": 0}
    square = train(_cfg(tmp_path, tiny_model_dir, wide_workspace, "c", max_steps=1,
                        checkpoint_every=5, **{"data.buckets": False}))
    assert square["buckets"] is None  # the bucket size is in the key: the square path re-encodes
    assert square["cache"] == {"latent_hits": 2, "latent_encoded": 4}  # but the square bucket


def test_bucket_resume_equals_uninterrupted(tiny_model_dir, wide_workspace, tmp_path):
    straight = train(_cfg(tmp_path, tiny_model_dir, wide_workspace, "s", max_steps=4,
                          checkpoint_every=2, keep_last=3))
    ck = Path(straight["last_checkpoint"]).parent
    steps = sorted(ck.iterdir())
    assert len(steps) == 2
    resumed_out = tmp_path / "r"
    (resumed_out / "checkpoints").mkdir(parents=True)
    shutil.copytree(steps[0], resumed_out / "checkpoints" / steps[0].name)
    resumed = train(_cfg(tmp_path, tiny_model_dir, wide_workspace, "r", max_steps=4,
                         checkpoint_every=2, keep_last=3), resume="latest")
    assert resumed["resumed_from"] and resumed["steps_this_run"] == 2
    a = load_file(str(tmp_path / "s" / "t.safetensors"))
    b = load_file(str(resumed_out / "t.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _tiny_sdxl(tmp_path) -> Components:
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tok = load_clip_tokenizer(build_clip_tokenizer([BASE_CORPUS], tmp_path / "tok",
                                                   vocab_size=700, max_length=16))
    torch.manual_seed(0)
    te_cfg = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                  num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=16,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id, projection_dim=16)
    unet = UNet2DConditionModel(
        sample_size=16, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=64,
        attention_head_dim=8, norm_num_groups=8, addition_embed_type="text_time",
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=16 + 6 * 8)
    spec = TinySpec()
    return Components(unet=unet, vae=build_vae(spec),
                      text_encoder=CLIPTextModel(CLIPTextConfig(**te_cfg)), tokenizer=tok,
                      noise_scheduler=build_scheduler(spec), kind="sdxl",
                      text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**te_cfg)),
                      tokenizer_2=tok)


def test_sdxl_time_ids_are_each_images_own(wide_workspace, tmp_path):
    comp = _tiny_sdxl(tmp_path)
    seen: list[torch.Tensor] = []
    comp.unet.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(kw["added_cond_kwargs"]["time_ids"].clone()),
        with_kwargs=True)
    cfg = _cfg(tmp_path, "mini", wide_workspace, "x", max_steps=3, checkpoint_every=5,
               batch_size=1)
    res = train(cfg, components=comp)
    assert res["status"] == "finished" and len(seen) == 3
    # (orig h, w, crop top, left, target h, w) of each image in its bucket, by hand
    allowed = {(32, 48, 1, 0, 24, 40), (48, 32, 0, 1, 40, 24), (32, 32, 0, 0, 32, 32),
               (24, 64, 1, 0, 16, 48), (32, 40, 0, 4, 32, 32)}
    got = {tuple(int(v) for v in t[0]) for t in seen}
    assert got <= allowed and len(got) >= 2


def test_buckets_command_plans_without_weights(wide_workspace, tmp_path):
    from tiny_train import write_config
    from typer.testing import CliRunner

    from craftlora.cli.main import app

    cfg = write_config(tmp_path / "c.toml", Path("mini"), wide_workspace, tmp_path / "o",
                       **BUCKETS)
    r = CliRunner().invoke(app, ["buckets", str(cfg), "--json"])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert plan["enabled"] and plan["n_images"] == 6
    assert {tuple(b["resolution"]): b["count"] for b in plan["buckets"].values()} == \
        {(40, 24): 2, (24, 40): 1, (32, 32): 2, (48, 16): 1}
    assert plan["enlarged"] == []  # every image here is at least its bucket's size
    big = ["--set", "data.resolution=48"]
    r = CliRunner().invoke(app, ["buckets", str(cfg), *big, "--json"])
    assert "images/002.png" in " ".join(json.loads(r.output)["enlarged"])  # 32×32 → 48×48
    r = CliRunner().invoke(app, ["buckets", str(cfg), *big, "--set", "data.bucket_no_upscale=true"])
    assert r.exit_code == 0 and "0 enlarged" in r.output
    (wide_workspace / "images" / "002.png").write_bytes(b"not a png")
    r = CliRunner().invoke(app, ["buckets", str(cfg)])
    assert r.exit_code == 2 and "002.png" in r.output


def test_weighted_captions_change_training(tiny_model_dir, tmp_path):
    from tiny_train import build_workspace

    ws = build_workspace(tmp_path / "ws", n=3)
    with Workspace.open(ws) as w:  # emphasis, and a caption longer than one 14-token chunk
        w.catalog.set_captions({1: "a (red:1.5) vase", 2: "a blue bowl BREAK a tall blue vase "
                                "with a round dotted bowl on a plate beside a cup"})
    runs = {}
    for on in (False, True):
        name = f"w{int(on)}"
        runs[on] = train(_cfg(tmp_path, tiny_model_dir, ws, name, max_steps=2,
                              checkpoint_every=5, **{"data.buckets": False,
                                                     "data.weighted_captions": on}))
        assert runs[on]["status"] == "finished"
    assert (runs[False]["captions_cut"], runs[True]["captions_cut"]) == (1, 0)
    a = load_file(str(tmp_path / "w0" / "t.safetensors"))
    b = load_file(str(tmp_path / "w1" / "t.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_image_size_reads_the_turned_size_as_decoding_does(tmp_path):
    from PIL import Image

    from craftlora.data.imageio import load_rgb
    from craftlora.train.buckets import image_size

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 48 × 32, shown turned by 90°
    p = tmp_path / "turned.png"
    Image.new("RGB", (48, 32), (200, 40, 30)).save(p, exif=exif)
    assert image_size(p) == (32, 48) == load_rgb(p).size
