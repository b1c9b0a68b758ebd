"""osdml: train seizure-detection CNNs on Open Seizure Database (OSDB) events and ship them to
the OpenSeizureDetector app as .pt, .ptl and .pte files.

Importing the package is cheap: torch, lightning and executorch are imported only by the
modules that need them.
"""

__version__ = "0.1.0"
