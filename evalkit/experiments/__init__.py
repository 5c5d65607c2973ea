"""Research experiments on the built-in Imagen: scripts whose outputs (tables, figures) live in reports/imagen/.

Each is a module with ``main(argv: list[str] | None = None) -> int``, run from the repository root as
``python -m evalkit.experiments.NAME [options]`` (``--help`` lists them); default outputs are the files that
reports/imagen/README.md quotes. Unlike the rest of evalkit below evalkit/cli, these parse their own arguments.

    plot_accuracy   training curves -> accuracy_vs_steps.png, 2026-11-25-h100-base-runs.png,
                    2026-11-26-cpu-position-finetunes.png, 2026-11-26-high-noise-expert.png (from the CSVs beside them)
    position_probe  do position words move the base's objects and its x0 prediction? MiniLM token cosines by layer
                    -> position_probe.md
    text_probe      is a relation's direction linearly readable from the frozen MiniLM tokens? -> text_probe.md
    unet_compare    Efficient U-Net vs a plain U-Net of about its size as the 32 -> 64 SR stage (paper App. B.1)
                    -> unet_compare.md, unet_compare.png
    sweeps          sampling settings one at a time (guidance vs diversity, thresholding, samplers, SR settings),
                    each a run scored by the toyworld metric -> sweeps.md, guidance_pareto.png
    position_breakdown  position accuracy of region vs relation prompts, scored by the toyworld metric
                    -> position_breakdown.md
    crash_safety    SIGKILL `evalkit run` and `evalkit score` at seeded random writes, rerun, and compare with an
                    uninterrupted run (kill_watch: the inotify-traced killer; crash_checks: the checks) -> stdout,
                    --out FILE.md, --json FILE
    rating_load     concurrent raters in headless Chromium through the real rating app and on the storage layer,
                    every answer checked against the votes table (rating_app: synthetic runs + the app server;
                    rating_browser, rating_storage: the two drivers) -> reports/rating/load.md
Toy-world accuracy in every experiment comes from ``evalkit.experiments.runs``: the run pipeline and the one
toy-world scorer (``evalkit.metrics.toyworld``), the numbers ``evalkit run`` + ``evalkit score`` give.
"""
