"""Training with Lightning: the module (step logic), the data module (window batches), the
checkpoint choice on the validation part, and ``fit`` for one split."""
