"""The map canvas: background rendering of vector and raster layers (see canvas.py)."""
