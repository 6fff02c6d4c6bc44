"""YAML training recipes (installed as ``curate.recipes``)."""
