"""Choosing what people judge: the pool view a strategy sees, rounds and their slices, routes, stream mode."""
