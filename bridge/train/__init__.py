"""Training: the generic trainer, exporter and CLI commands, and the Keras model families."""
