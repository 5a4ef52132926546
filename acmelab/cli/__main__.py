"""``python -m acmelab.cli``: the ``acmelab`` command."""

import sys

from acmelab.cli import main

sys.exit(main())
