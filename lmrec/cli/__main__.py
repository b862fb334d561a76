"""``python -m lmrec.cli``: the same as the ``lmrec`` command."""
from lmrec.cli.main import main

raise SystemExit(main())
