"""Human rating study app: `streamlit run app.py -- --db study.sqlite [--admin-token TOKEN]`.

All logic lives in evalkit.rating.webapp; this file is only Streamlit's entry point.
"""

from evalkit.rating.webapp import main

main()
