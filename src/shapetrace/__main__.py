"""``python -m shapetrace``: the same as the ``shapetrace`` command."""

import sys

from shapetrace.cli.main import main

sys.exit(main())
