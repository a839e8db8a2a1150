from __future__ import annotations

import sys

from wheelfactory.cli import main

sys.exit(main())
