"""Training: the Trainer, checkpoints, optimizers, schedules, metrics."""
