"""`python -m ardm.cli` (used by torchrun): the same as the `ardm` command."""

import sys

from ardm.cli import main

sys.exit(main())
