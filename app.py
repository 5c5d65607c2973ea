"""Human rating study app: `streamlit run app.py -- --db study.sqlite [--admin-token TOKEN]`.

All logic lives in evalkit.rating.webapp; this file is only Streamlit's entry point: it hands the app the reader of
its command line (evalkit.cli.app_args).
"""

from evalkit.cli.app_args import app_settings
from evalkit.rating.webapp import main

main(app_settings)
