"""pixlearn.synthetic."""
