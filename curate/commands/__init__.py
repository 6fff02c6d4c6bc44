"""The CLI's command groups, one module each (``curate.cli`` assembles them)."""
