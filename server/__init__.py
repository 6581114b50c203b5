"""The process: the ``butterflyfx`` command, config loading and the Hypercorn launch."""
