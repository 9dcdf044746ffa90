"""``python -m predictor.batch``: see :mod:`predictor.batch.cli`."""

import sys

from predictor.batch.cli import main

sys.exit(main())
