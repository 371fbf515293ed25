"""The kept, captioned set as a kohya sd-scripts dataset: ``img/<repeats>_<name>/`` with an
image and a ``.txt`` caption each, ``dataset.toml`` and a ready ``train_command.sh``."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

import tomli_w

from craftlora.catalog.workspace import Workspace
from craftlora.data.atomic import atomic_write_bytes
from craftlora.train.caption_ops import kohya_steps


def export_kohya(ws: Workspace, out: Path, *, name: str, repeats: int = 10, epochs: int = 10,
                 batch_size: int = 4, resolution: int = 1024, keep_tokens: int = 1,
                 model: str = "BASE_MODEL.safetensors") -> dict[str, Any]:
    """Write the dataset of the workspace's training images (split train, synthetic)."""
    recs = [r for r in ws.catalog.images(split="train", origin="synthetic") if r.caption]
    if not recs:
        raise ValueError(f"{ws.root}: no captioned training images; run `craftlora character "
                         "tags` after selecting")
    folder = Path(out) / "img" / f"{repeats}_{name}"
    folder.mkdir(parents=True, exist_ok=True)
    for rec in recs:
        src = ws.resolve(rec.path)
        stem = f"{rec.id:06d}"
        shutil.copyfile(src, folder / f"{stem}{src.suffix}")
        atomic_write_bytes(folder / f"{stem}.txt", (rec.caption + "\n").encode("utf-8"))
    dataset = {
        "general": {"shuffle_caption": True, "keep_tokens": keep_tokens,
                    "caption_extension": ".txt"},
        "datasets": [{"resolution": resolution, "batch_size": batch_size, "enable_bucket": True,
                      "subsets": [{"image_dir": str(folder.resolve()),
                                   "num_repeats": repeats}]}],
    }
    atomic_write_bytes(Path(out) / "dataset.toml", tomli_w.dumps(dataset).encode())
    args = ["accelerate", "launch", "sdxl_train_network.py",
            f"--pretrained_model_name_or_path={model}",
            f"--dataset_config={(Path(out) / 'dataset.toml').resolve()}",
            f"--output_dir={(Path(out) / 'output').resolve()}", f"--output_name={name}",
            "--network_module=networks.lora", "--network_dim=32", "--network_alpha=16",
            f"--max_train_epochs={epochs}", "--learning_rate=1e-4", "--optimizer_type=AdamW8bit",
            "--mixed_precision=bf16", "--save_model_as=safetensors", "--cache_latents",
            "--network_train_unet_only", "--gradient_checkpointing"]
    cmd = "#!/bin/sh\n# sd-scripts (kohya-ss) SDXL LoRA on this dataset; run from sd-scripts/\n"
    cmd += " \\\n  ".join(shlex.quote(a) for a in args) + "\n"
    atomic_write_bytes(Path(out) / "train_command.sh", cmd.encode())
    return {"folder": str(folder), "images": len(recs), "repeats": repeats, "epochs": epochs,
            "steps": kohya_steps(len(recs), repeats, epochs, batch_size),
            "dataset_toml": str(Path(out) / "dataset.toml"),
            "command": str(Path(out) / "train_command.sh")}
