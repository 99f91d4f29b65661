"""The dashboards layer: reports and plots read from MLflow (see docs/ARCHITECTURE.md); built by later issues."""
