"""multiplan.core — the GIS engine. Pure Python; never imports Qt (a test enforces it)."""
