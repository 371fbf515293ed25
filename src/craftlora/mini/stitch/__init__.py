"""The stitch world: one flat design rendered as vector art and as embroidery in several styles."""
