"""Stand-in weight files of the right *format* for the ``craftlora weights`` registry: the real
networks' key names and shapes, constant values (stride-0 views, so the files stay tiny)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

from craftlora.metrics.weights import _torchvision_shapes
from craftlora.models.tokenizer import build_clip_tokenizer


def save_standin(kind: str, path: Path, value: float = 0.01) -> Path:
    """A torchvision / pytorch-fid state dict for ``kind`` saved with ``torch.save``."""
    one = torch.full((1,), value)
    sd = {k: one.expand(*shape) if shape else one[0].clone()
          for k, shape in _torchvision_shapes(kind).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A random tiny transformers CLIPModel folder with its tokenizer and image processor."""
    build_clip_tokenizer(["a blue bowl", "a white vase", "red lacquer box"], folder,
                         vocab_size=560, max_length=16)
    tok = CLIPTokenizer.from_pretrained(folder)
    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config={"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2,
                     "max_position_embeddings": 16, "bos_token_id": tok.bos_token_id,
                     "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16)
    CLIPModel(cfg).save_pretrained(folder, safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
                       ).save_pretrained(folder)
    return folder
