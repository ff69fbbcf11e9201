#!/usr/bin/env python3
"""Builds dist/flamenco-addon-<version>.zip, the installable Blender add-on."""

import sys


def main() -> int:
    print("build_addon.py: the Blender add-on is not written yet (see the add-on issue); "
          "nothing was built.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
