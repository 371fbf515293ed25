"""One-shot style LoRA by contrastive block modulation (EmoLoRA-like) and style-block discovery."""
