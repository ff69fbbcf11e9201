"""`python -m worker` runs the worker like `flamenco-worker`."""

import sys

from .cli import main

sys.exit(main())
