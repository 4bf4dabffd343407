"""The disposable worker process: imports the user handler once and runs each event."""
