"""``make gpu-check`` lives in the package now: ``python -m doodle.gpu.check`` (this file
runs it, for the commands written before the move)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from doodle.gpu.check import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
