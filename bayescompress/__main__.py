"""``python -m bayescompress``: the same command line as the ``bayescompress`` script."""

import sys

from .cli import main

sys.exit(main())
