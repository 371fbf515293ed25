"""The mini character world: a procedural mascot with fixed identity features, its exact
detectors, distractor characters and the faults a weak generator adds (watermark, warp)."""
