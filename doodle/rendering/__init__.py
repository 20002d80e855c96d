"""Drawings into pixels: the rasteriser, its vector fast path, stroke augmentation."""
