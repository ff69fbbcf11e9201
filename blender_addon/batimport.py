"""Makes Blender Asset Tracer importable, from wherever this add-on can find it.

* As a Blender 4.2+ extension, Blender installed BAT from the bundled wheel.
* As a legacy add-on, build_addon.py put a copy in `_vendor/` next to this file;
  BAT imports itself by its absolute name, so that folder goes on sys.path
  (at the end: a BAT that Blender already has wins).
* In the source tree, BAT is a dependency of the package (pip).
"""

import os
import sys

try:
    import blender_asset_tracer  # noqa: F401
except ImportError:
    _vendor = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_vendor")
    if os.path.isdir(_vendor) and _vendor not in sys.path:
        sys.path.append(_vendor)
    import blender_asset_tracer  # noqa: F401
