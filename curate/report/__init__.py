"""What a lead reads: the project's status, the report's data and its HTML page."""
