"""``python -m napari_nanogan.cli``: the ``nanogan`` command."""

import sys

from . import main

sys.exit(main())
