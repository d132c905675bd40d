"""multiplan — 多规合一 desktop GIS for county-level territorial spatial planning."""

__version__ = "0.1.0"
