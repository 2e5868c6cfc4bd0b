import sys

from shvq.cli import main

sys.exit(main())
