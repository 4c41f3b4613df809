"""Watching the deployed model: reference profiles and window summaries (``drift``), the drift methods
(``drift_methods``, ``method_kinds``, ``stats``), window histograms where the data lives
(``window_histograms``), data quality (``quality``), label-free estimates (``performance_estimate``), the
sensor's assessment and the skip-or-retrain decision (``assessment``) and the HTML drift report
(``drift_report``)."""
