"""python -m radbill.cli: the same as the radbill console script."""

import sys

from radbill.cli import main

sys.exit(main())
