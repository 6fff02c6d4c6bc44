"""Signals that decide what experts should rank or rewrite; one module per signal."""
