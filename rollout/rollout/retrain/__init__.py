"""The retraining trigger (issue 14): an alert in, one retraining Job, the challenger into the canary.

Layers: ``server`` (HTTP: Alertmanager webhook, the detector's drift CloudEvent, status, metrics)
-> ``trigger`` (one run at a time, the decision path) -> ``jobs`` (Jobs from the chart's suspended
CronJobs, their outcome) and ``canary`` (the canary InferenceService's ``STORAGE_URI``, guarded)
-> :mod:`rollout.kube` (the one gateway to the API).
"""
