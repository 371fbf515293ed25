"""Sweeps: a base training config × variants (grid or list of overrides) × seeds, trained,
compared on the same prompts and seeds, and summarised with paired bootstrap intervals."""
