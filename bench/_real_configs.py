"""Full-size SD 1.5, SD 2.1 (768 v) and SDXL base architectures, written from their published
diffusers configs (only the fields that differ from the diffusers / transformers defaults).

Used by ``bench.real_scale`` to build random-weight models of the real size with no hub access.
The tokenizer is not the real CLIP vocabulary (a small BPE trained here): it changes which ids a
prompt gets, not the text encoder's size or cost.
"""

from __future__ import annotations

_SD_DOWN = ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
_SD_UP = ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3
_VAE = {
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
}
_CLIP_L = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
           "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
           "projection_dim": 768, "vocab_size": 49408}
_SCHED = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
          "num_train_timesteps": 1000, "steps_offset": 1, "clip_sample": False,
          "set_alpha_to_one": False}

FAMILIES: dict[str, dict] = {
    "sd15": {
        "native_px": 512,
        "unet": {"sample_size": 64, "block_out_channels": [320, 640, 1280, 1280],
                 "down_block_types": _SD_DOWN, "up_block_types": _SD_UP,
                 "cross_attention_dim": 768, "attention_head_dim": 8},
        "vae": {**_VAE, "sample_size": 512, "scaling_factor": 0.18215},
        "text_encoder": _CLIP_L,
        "scheduler": {**_SCHED, "prediction_type": "epsilon"},
    },
    "sd21": {
        "native_px": 768,
        "unet": {"sample_size": 96, "block_out_channels": [320, 640, 1280, 1280],
                 "down_block_types": _SD_DOWN, "up_block_types": _SD_UP,
                 "cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20],
                 "use_linear_projection": True, "upcast_attention": True},
        "vae": {**_VAE, "sample_size": 768, "scaling_factor": 0.18215},
        "text_encoder": {"hidden_size": 1024, "intermediate_size": 4096,
                         "num_hidden_layers": 23, "num_attention_heads": 16,
                         "max_position_embeddings": 77, "hidden_act": "gelu",
                         "projection_dim": 512, "vocab_size": 49408},
        "scheduler": {**_SCHED, "prediction_type": "v_prediction"},
    },
    "sdxl": {
        "native_px": 1024,
        "unet": {"sample_size": 128, "block_out_channels": [320, 640, 1280],
                 "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D",
                                      "CrossAttnDownBlock2D"],
                 "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                 "transformer_layers_per_block": [1, 2, 10], "attention_head_dim": [5, 10, 20],
                 "cross_attention_dim": 2048, "use_linear_projection": True,
                 "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
                 "projection_class_embeddings_input_dim": 2816},
        "vae": {**_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
        "text_encoder": _CLIP_L,
        "text_encoder_2": {"hidden_size": 1280, "intermediate_size": 5120,
                           "num_hidden_layers": 32, "num_attention_heads": 20,
                           "max_position_embeddings": 77, "hidden_act": "gelu",
                           "projection_dim": 1280, "vocab_size": 49408},
        "scheduler": {**_SCHED, "prediction_type": "epsilon"},
    },
}
