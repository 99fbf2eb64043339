"""``python -m deepspike`` (also what ``torchrun -m deepspike`` runs)."""

from deepspike.cli import exit_process, main

exit_process(main())
