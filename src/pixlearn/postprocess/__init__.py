"""pixlearn.postprocess."""
