"""Image-quality metrics the Imagen paper reports: FID and KID on Inception-v3 features, and CLIP score.

Data flow: images -> cached features (``features``) -> streaming statistics (``stats``) -> numbers
(``frechet``, ``kid``, ``clip_score``); ``scoring`` writes a run's metrics.json. Knows no adapter or CLI.
"""
