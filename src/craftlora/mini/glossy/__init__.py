"""The glossy world: lacquer boxes, trays and panels under studio lights, each rendered with its
specular highlights, without them, and with the exact highlight mask."""
