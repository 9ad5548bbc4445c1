"""``python -m gluon_inception.cli``: the console script."""
import sys

from .main import main

sys.exit(main())
