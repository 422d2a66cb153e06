"""What is timed: model and wrapper registries, the data a rank trains on and the training step.
Imports only ``cnnbench.machine``."""
