"""The design engine on the mini base: LoRAs by weight (several at once, off again), seeds
repeat, img2img variations, the pipeline loaded once; sessions feed back and export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from craftlora.studio.context import StudioContext
from craftlora.studio.design import DesignEngine, DesignError, RoundRequest, compose_prompt
from craftlora.studio.sessions import SessionError, export_collection, feed_back, new_session
from craftlora.studio.worker import Worker


def _save_lora(engine: DesignEngine, folder, name: str, seed: int) -> None:
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_config(engine.pipe().unet.config)
    unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_k", "to_v"]))
    torch.manual_seed(seed)
    for n, p in unet.named_parameters():
        if "lora_" in n:
            p.data.normal_(0, 0.5)
    sd = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=sd,
                                              weight_name=f"{name}.safetensors",
                                              safe_serialization=True)


@pytest.fixture
def engine(review_ws):
    ctx = StudioContext(review_ws.root)
    yield DesignEngine(ctx)
    ctx.close()


def _round(engine, worker, session, index, parent_image=None, **kw):
    req = RoundRequest(**{"attributes": {"glaze": "white", "type": "bowl"}, "n": 2, "steps": 3,
                          **kw})
    parent = parent_image
    job = worker.start(lambda j: engine.run_round(session, index, req, None, parent, j))
    job.thread.join()
    if job.error:
        raise job.error
    return job.result


def _pixels(engine, rnd):
    return [np.asarray(Image.open(engine.ctx.root / c["file"])) for c in rnd["candidates"]]


def test_loras_weights_seeds_and_one_load(engine):
    ctx, worker = engine.ctx, Worker()
    _save_lora(engine, ctx.root / "loras", "glazy", 1)
    _save_lora(engine, ctx.root / "loras", "shapey", 2)
    sid, _ = new_session(ctx, "t", "dee")
    plain = _pixels(engine, _round(engine, worker, sid, 0))
    with_one = _round(engine, worker, sid, 1, loras=[("glazy", 1.0)])
    both = _round(engine, worker, sid, 2, loras=[("glazy", 1.0), ("shapey", 0.5)])
    again = _pixels(engine, _round(engine, worker, sid, 3))  # LoRAs off again
    assert with_one["loras"] == [{"name": "glazy", "weight": 1.0, "file": "glazy.safetensors"}]
    assert [x["name"] for x in both["loras"]] == ["glazy", "shapey"]
    assert not np.array_equal(plain[0], _pixels(engine, with_one)[0])
    assert not np.array_equal(_pixels(engine, with_one)[0], _pixels(engine, both)[0])
    assert all(np.array_equal(a, b) for a, b in zip(plain, again, strict=True))
    assert engine.loads == 1 and with_one["seeds"] == [0, 1]
    with pytest.raises(FileNotFoundError, match="'nosuch'"):
        _round(engine, worker, sid, 4, loras=[("nosuch", 1.0)])


def test_img2img_variation_feed_back_and_export(engine):
    ctx, worker = engine.ctx, Worker()
    sid, state = new_session(ctx, "t", "dee")
    first = _round(engine, worker, sid, 0)
    pick = Image.open(ctx.root / first["candidates"][0]["file"])
    with pytest.raises(DesignError, match="at least one step"):
        _round(engine, worker, sid, 1, kind="img2img", strength=0.2, parent_image=pick)
    low = _round(engine, worker, sid, 1, kind="img2img", strength=0.2, seed=1, steps=10,
                 parent_image=pick)
    assert low["kind"] == "img2img" and low["strength"] == 0.2
    diff = np.abs(_pixels(engine, low)[0].astype(int) - np.asarray(pick).astype(int)).mean()
    assert diff < 40  # a light variation stays near its parent
    state["rounds"] += [first, low]
    with pytest.raises(SessionError, match="pick at least one"):
        feed_back(ctx, sid, state)
    state["rounds"][1]["candidates"][1]["picked"] = True
    state["rounds"][0]["candidates"][1]["starred"] = True
    out = feed_back(ctx, sid, state)
    assert out["added"] == 1 and feed_back(ctx, sid, state)["already"] == 1
    (rec,) = ctx.catalog.images(set_name=f"design-s{sid}")
    assert rec.provenance["kind"] == "img2img" and rec.provenance["round"] == 1
    assert rec.attributes == {"glaze": "white", "type": "bowl"} and rec.split == "train"
    folder = ctx.root / export_collection(ctx, sid, state)
    coll = json.loads((folder / "collection.json").read_text())
    assert len(coll["items"]) == 2 and all((folder / i["file"]).is_file() for i in coll["items"])


def test_prompt_form_refuses_values_outside_the_workspace(engine):
    assert compose_prompt(engine.ctx, {"glaze": "celadon"}, " tall  neck ") == "celadon, tall neck"
    with pytest.raises(DesignError, match="not attribute values"):
        compose_prompt(engine.ctx, {"glaze": "plastic"}, "")
