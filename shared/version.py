"""The project's version, and the protocol versions components check against each other."""

__version__ = "0.1.0"

API_VERSION = 1
"""Bumped when the user API under /api/ changes incompatibly; the add-on checks it."""

USER_AGENT = f"flamenco/{__version__}"
