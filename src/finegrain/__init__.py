"""finegrain: fine-grained visual recognition from small data."""

__version__ = "0.1.0"
