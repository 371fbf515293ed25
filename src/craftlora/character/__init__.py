"""The character workflow (seed 004): a structured description → prompts → candidates →
selection → tags → kohya dataset → LoRA → consistency evaluation."""
