"""Reports: what a researcher reads and what CI acts on, made only from runs' ``metrics.json`` (schema version 1,
evalkit/metrics/metrics_file.py) and never by recomputing a number.

The regression gate and the side-by-side comparison:
  ``records``    a run's metrics.json read into typed ``StatRecord``s (value, interval, comparability key,
                 bootstrap replicates), every malformed file a one-line ``EvalkitError``
  ``keys``       which comparability-key fields of two stats differ (apples are never compared with oranges)
  ``noise``      the sampling noise of a change between two runs: a paired bootstrap over prompts when both runs
                 resampled the same prompts, else an unpaired rule from the two intervals or a two-proportion test
  ``baseline``   the versioned baseline file the gate reads: stats and per-metric tolerances
  ``gate``       ``check_run(run_dir, baseline_path) -> CheckResult`` (`evalkit check`) and ``update_baseline``
  ``summary``    a gate result as an aligned terminal table and as a Markdown pull-request comment
  ``compare``    ``compare_runs(run_a, run_b) -> Comparison`` (`evalkit compare`)
  ``tables``     number formatting, aligned terminal tables and escaped Markdown (a pull-request comment)
"""
