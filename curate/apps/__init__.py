"""Gradio apps of curate (installed as ``curate.apps``)."""
