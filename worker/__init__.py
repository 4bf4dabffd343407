"""The disposable worker process, which imports the user handler once and runs each event,
and the modules the supervisor shares with it (the pipe's protocol, Lambda's error words
and limits, log formatting, the /proc readers). Nothing here imports the supervisor."""
