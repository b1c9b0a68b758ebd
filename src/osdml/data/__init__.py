"""OSDB data: streaming reader, sample streams and windows, selection, splits, augmentation and
the synthetic OSDB generator. Nothing here imports torch."""
