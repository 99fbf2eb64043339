"""Training: the Trainer and its parts (setup, resume, epoch, checkpoint, summary), run directories
(``runs``), optimizers, schedules, evaluation, data parallelism."""
