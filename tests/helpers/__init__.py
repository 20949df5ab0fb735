"""What the tests share besides the fakes: the emulator on a thread, generated audio, the
OpenAPI schemas, a private PostgreSQL server, subprocess and engine harnesses."""

from pathlib import Path
from typing import Final

#: The repository's root (the folder holding pyproject.toml).
REPO: Final = Path(__file__).resolve().parents[2]
