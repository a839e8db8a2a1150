"""Write the JSON schemas that are generated from code (the canonical writer).

    python scripts/update_schemas.py

resources/build-record.schema.json <- wheelfactory.record.json_schema(). The unit tests
fail while a schema file and its code disagree.
"""

from __future__ import annotations

import json

from wheelfactory import resources
from wheelfactory.record import json_schema


def main() -> None:
    path = resources.BUILD_RECORD_SCHEMA
    path.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
