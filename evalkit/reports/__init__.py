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

The report (`evalkit report`): ``report.build_report(runs, study) -> Report`` and ``write_report(report, out_dir)``
  ``document``       the report as typed sections and blocks (no markup)
  ``loading``        ``load_runs(paths) -> [ReportRun]``: manifest, index rows, metrics, groups, generation block
  ``run_labels``     each run's short label: the settings that tell it apart (``base.guidance=1``), or --label's
  ``metric_tables``  the metric table per benchmark (interval, N, direction, best marked) and the key table
  ``categories``     per-category tables and interval bar charts (``charts``: PNG bytes, Agg)
  ``grids``          image grids: per category a few prompts x samples, runs side by side
  ``run_info``       the Runs overview (label -> run id), generation efficiency and provenance per run
  ``published``      published zero-shot COCO FID-30K numbers, shown beside a coco run's FID
  ``sweeps``, ``study_section``   runs differing in one setting; the human study
  ``render_html``    one self-contained report.html (``html_style``: its inline CSS)
  ``render_md``      report.md with figures and images beside it; ``render_json``: report.json
  ``report_format``  estimate cells, anchors, short hashes shared by the builders
"""
