"""A small but faithful Imagen (Saharia et al. 2022): frozen text encoder, base U-Net, Efficient U-Net
super-resolution stages, continuous-time diffusion, guided samplers and a cascade that saves/loads itself.

This package knows nothing of runs, metrics or the CLI; the adapter (`evalkit.adapters.imagen`) wraps it.
"""
