"""The stylesheet inlined into report.html: system fonts only (nothing is fetched), readable tables with
tabular figures, captions under tables and figures, and the pure-CSS ``:target`` overlay that shows an image at
full size (see evalkit.reports.render_html).

Wide tables and grids scroll sideways inside their ``.table-wrap`` (overflow-x: auto), never past the page, with
their first column (stat, category, prompt) kept in view; a number's interval and N sit under its value in
smaller type (``.detail``), so that four runs' columns fit a 1280 px window."""

CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --rule: #d9dde5; --band: #f5f7fa; --accent: #1f5fae;
        --warn-bg: #fff6e0; --warn: #8a5a00; --note-bg: #eef4fb; }
* { box-sizing: border-box; }
html { scroll-behavior: smooth; }
body { margin: 0; background: #fff; color: var(--ink);
       font: 15px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial,
             "Noto Sans", "Liberation Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 64px; }
header h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
.subtitle { color: var(--muted); margin: 0 0 18px; }
h2 { font-size: 21px; margin: 40px 0 10px; padding-bottom: 6px; border-bottom: 2px solid var(--rule); }
h3 { font-size: 17px; margin: 28px 0 8px; }
h4, h5, h6 { font-size: 15px; margin: 22px 0 6px; }
section { scroll-margin-top: 12px; }
nav.toc { background: var(--band); border: 1px solid var(--rule); border-radius: 6px; padding: 10px 20px 12px;
          margin: 10px 0 24px; }
nav.toc h2 { font-size: 14px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted);
             border: 0; margin: 4px 0 6px; padding: 0; }
nav.toc ol { margin: 0; padding-left: 20px; } nav.toc ol ol { font-size: 13px; }
nav.toc a, a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
.table-wrap { overflow-x: auto; margin: 8px 0 4px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.data, table.kv { width: 100%; font-size: 13.5px; }
table.data th, table.data td, table.kv th, table.kv td { padding: 6px 10px; border-bottom: 1px solid var(--rule);
    text-align: left; vertical-align: top; }
table.data thead th { background: var(--band); border-bottom: 2px solid var(--rule); font-weight: 600;
    overflow-wrap: break-word; }
table.data tbody tr { background: #fff; } table.data tbody tr:nth-child(even) { background: #fafbfc; }
table.data tbody th { font-weight: 600; min-width: 9em; }
table.data tbody th, table.data thead th:first-child { position: sticky; left: 0; z-index: 1; }
table.data tbody th { background: inherit; }
table.data td.num { white-space: nowrap; }
table.data td.best { background: #e8f3ea; }
.detail { display: block; color: var(--muted); font-size: 11.5px; line-height: 1.35; font-weight: 400; }
table.kv th { width: 210px; color: var(--muted); font-weight: 600; }
table.kv td { word-break: break-word; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
    font-size: 12.5px; }
.caption, figcaption { color: var(--muted); font-size: 13px; margin: 4px 0 16px; }
figure { margin: 12px 0 20px; } figure.chart img { max-width: 100%; height: auto;
    border: 1px solid var(--rule); border-radius: 4px; }
p.para { margin: 8px 0; padding: 8px 12px; border-radius: 4px; }
p.para.text { padding: 0; }
p.para.note { background: var(--note-bg); }
p.para.warning { background: var(--warn-bg); color: var(--warn); border-left: 4px solid #e0a100; }
table.grid { font-size: 12.5px; }
table.grid th, table.grid td { padding: 6px; border-bottom: 1px solid var(--rule); vertical-align: top;
    text-align: center; }
table.grid thead th { font-weight: 600; background: var(--band); overflow-wrap: break-word; }
table.grid thead th.group { border-bottom: 1px solid var(--rule); }
table.grid .group-start { border-left: 2px solid var(--rule); }
table.grid th.prompt { text-align: left; font-weight: 500; max-width: 260px; min-width: 150px;
    white-space: normal; word-break: break-word; background: #fff; }
table.grid th.prompt, table.grid thead tr:first-child th:first-child { position: sticky; left: 0; z-index: 1; }
img.thumb { display: block; margin: 0 auto; max-width: 160px; max-height: 160px; border-radius: 3px;
    border: 1px solid var(--rule); }
td.gap { color: var(--muted); font-style: italic; }
.seed { color: var(--muted); font-size: 11px; margin-top: 2px; }
.overlay { display: none; position: fixed; inset: 0; z-index: 10; background: rgba(15, 18, 25, .88);
    align-items: center; justify-content: center; }
.overlay:target { display: flex; }
.overlay .backdrop { position: absolute; inset: 0; }
.overlay figure { position: relative; margin: 0; max-width: 94vw; max-height: 94vh; text-align: center; }
.overlay img { max-width: 94vw; max-height: 86vh; image-rendering: auto; background: #fff; }
.overlay figcaption { color: #e8ebf0; }
.overlay .close { position: absolute; top: 14px; right: 20px; z-index: 11; color: #fff; font-size: 15px;
    background: rgba(255, 255, 255, .12); padding: 4px 10px; border-radius: 4px; }
@media print { .overlay { display: none !important; } nav.toc { break-after: page; } }
"""
