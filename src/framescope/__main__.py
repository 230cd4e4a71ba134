"""``python -m framescope`` runs the ``framescope`` command."""

from framescope.cli import main

raise SystemExit(main())
