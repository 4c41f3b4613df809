"""The retraining history inside Airflow: read-only queries (:mod:`.queries`), the plugin's web app
(:mod:`.app`, mounted by ``plugins/retraining_ui.py``) and its page (``page.html``)."""
