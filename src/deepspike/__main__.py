"""``python -m deepspike`` (also what ``torchrun -m deepspike`` runs)."""

from deepspike.cli import console

console()
