"""Sweeps: Ray Tune over pruning configs, MLflow tracking from the driver, the `gprune` command line."""
