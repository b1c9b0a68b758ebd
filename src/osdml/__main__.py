"""`python -m osdml`: the osdml command line."""

from osdml.cli import entry

if __name__ == "__main__":
    entry()
