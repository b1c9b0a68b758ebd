"""Artefacts: the .pt checkpoint, the .ptl lite-interpreter file, the .pte ExecuTorch program,
and their parity check against the eager model. Nothing here imports osdml.train."""
