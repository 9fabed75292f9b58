"""`python -m bnnhw` is the `bnnhw` command."""

import sys

from bnnhw.cli.main import main

sys.exit(main())
