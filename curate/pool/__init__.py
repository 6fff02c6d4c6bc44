"""The pool: its texts' embeddings, its units (prompts, completions, pairs), clusters, near-duplicates, maps, drift."""
