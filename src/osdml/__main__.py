"""`python -m osdml`: the osdml command line."""

import sys

from osdml.cli import main

if __name__ == "__main__":
    sys.exit(main())
