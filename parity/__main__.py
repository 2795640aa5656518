"""``python -m parity``: the ``alexnet-parity`` program (``alexnet_cli.parity``), kept for those who
run it by this name. Only run as a program; importing ``parity`` never imports the commands."""

import sys

from alexnet_cli.parity import main

sys.exit(main())
