"""``python -m tinypix`` is the ``tinypix`` command."""
import sys

from .cli import main

sys.exit(main())
