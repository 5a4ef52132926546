"""``python -m acmelab.lab build [--bin-dir DIR] [--source TARBALL]``: build the
pinned Pebble (what ``make setup`` runs; see :mod:`acmelab.lab.build`)."""

import sys

from acmelab.lab.build import main

if __name__ == "__main__":
    arguments = sys.argv[1:]
    if not arguments or arguments[0] != "build":
        print("usage: python -m acmelab.lab build [--bin-dir DIR] [--source TARBALL]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(arguments[1:]))
