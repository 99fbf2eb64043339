"""One module per CLI command; each has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args)``.

To add a command, write a module here and list it in ``COMMANDS``.
"""

COMMANDS = (
    "train",
    "eval",
    "models",
    "methods",
    "datasets",
    "timesteps",
    "convert",
    "analyze",
    "compare",
    "export",
    "demo",
    "reproduce",
    "zoo",
)
