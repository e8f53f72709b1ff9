"""pixlearn.app."""
