"""``python -m deepspike`` (also what ``torchrun -m deepspike`` runs)."""

import sys

from deepspike.cli import main

sys.exit(main())
