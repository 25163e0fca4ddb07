"""Training: Lightning module, fit/predict, k-fold cross-validation and ensembles."""

from crystograph.train.fit import FitResult, fit, fit_predict, predict

__all__ = ["FitResult", "fit", "fit_predict", "predict"]
