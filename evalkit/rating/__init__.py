"""Human pairwise rating studies (Imagen-style): build trials from runs, collect votes safely, aggregate them.

Knows runs and images, never models: a "model" here is only a run directory whose name raters never see.
"""
