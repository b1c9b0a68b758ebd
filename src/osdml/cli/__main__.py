"""``python -m osdml.cli``."""

import sys

from osdml.cli import main

sys.exit(main())
