"""``python -m sentistream.pipelines.stream``: the streaming job (see ``command.py``)."""

import sys

from sentistream.pipelines.stream.command import main

sys.exit(main())
