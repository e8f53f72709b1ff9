"""pixlearn.classical."""
