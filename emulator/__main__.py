"""`python -m emulator`: the emulator command without the rest of the CLI."""

import sys

from .cli import main

sys.exit(main())
