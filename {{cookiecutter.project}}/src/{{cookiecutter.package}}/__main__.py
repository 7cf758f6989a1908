"""`python -m <package>`: the project's command line."""

import sys

from .cli import main

sys.exit(main())
