"""craftlora: LoRA workbench for craft and cultural-heritage imagery."""

__version__ = "0.1.0"
