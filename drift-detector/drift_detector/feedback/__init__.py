"""The feedback store: predictions recorded from the payload log, ground truth joined to them, live quality.

Runs inside the drift detector when ``DRIFT_FEEDBACK_DB_URL`` is set (see the README for why it
is not a process of its own). Layering: ``api`` -> ``service`` -> ``labelling`` / ``recorder`` /
``store`` -> ``schema``; ``page``, ``pairs`` and ``quality`` are pure.
"""
