"""Human pairwise rating studies, as in the Imagen paper's DrawBench evaluation.

    evalkit study create --runs RUN_A RUN_B --questions quality,alignment --set-size 4 --db study.sqlite
    evalkit study invite --db study.sqlite --count 25          # optional: per-rater secret tokens
    streamlit run app.py -- --db study.sqlite                  # raters vote; admin: EVALKIT_ADMIN_TOKEN=...
    evalkit study summarize --db study.sqlite --plot fig3.png  # per-category preference, 95% CIs, BT, alpha
    evalkit study export --db study.sqlite --out votes.parquet

Modules: ``db`` (SQLite schema, WAL, freeze triggers), ``build`` (trials and control trials from runs),
``session`` (what a rater can do), ``images`` (serving by opaque id), ``votes`` (tables, control pass rates,
export), ``bootstrap`` / ``bradley_terry`` / ``agreement`` / ``summary`` / ``plot`` (the numbers), ``webapp`` and
``admin_page`` (Streamlit). Knows runs and images, never models: a "model" here is a run whose name raters never see.
"""
