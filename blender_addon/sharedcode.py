"""The `shared/` modules the add-on uses, from wherever they are.

In the built add-on, build_addon.py copies them into the package as `_shared`
(Blender has no `shared` package on its path); in the source tree, under
pytest, they are the repository's own `shared/`.
"""

try:
    from ._shared import frames, setting_types, statuses, user_client, variables, version  # noqa: F401 - built
except ImportError:
    from shared import frames, setting_types, statuses, user_client, variables, version  # noqa: F401 - source
