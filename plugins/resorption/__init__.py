"""Résorption: OGC API services for the resorption of slums and large squats in France."""

__version__ = "0.1.0"
