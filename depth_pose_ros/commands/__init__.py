"""`depth-pose` subcommands, each a module with ``register(subparsers)``."""
