"""KServe explainer: Kernel SHAP attributions in raw feature names, with the predictor as the model."""
