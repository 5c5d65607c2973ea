"""Image files for the metrics: the names below now live in ``evalkit.images`` (shared by every stage)."""

from evalkit.images import (  # noqa: F401  (re-exported for modules that import them from here)
    IMAGE_SUFFIXES,
    UnreadableImage,
    center_crop_resize,
    content_hash,
    list_images,
    load_rgb,
    to_rgb_array,
)

__all__ = ["IMAGE_SUFFIXES", "UnreadableImage", "center_crop_resize", "content_hash", "list_images", "load_rgb",
           "to_rgb_array"]
