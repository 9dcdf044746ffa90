"""Training: fits the stable (gradient boosting) and canary (MLP) models and writes model bundles."""
