"""evalkit: evaluate text-to-image models the way the Imagen paper did."""

__version__ = "0.1.0"
