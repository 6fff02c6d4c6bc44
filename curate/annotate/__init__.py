"""The annotation app's library: accounts, the work queue, submits, instructions and progress."""
