"""The ``manara`` command line: one module per command group."""
