"""pixlearn.models."""
