"""`python -m inception_kit.cli`: the same as the `inception-kit` command."""

import sys

from . import main

sys.exit(main())
