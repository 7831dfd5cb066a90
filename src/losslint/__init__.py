"""losslint: a linter for custom loss functions in deep-learning code."""

__version__ = "0.1.0"
