"""What the benchmarks put into the app's database before a run and read out after it.

Runs inside Django, as a child process of the benchmark (``DATABASE_URL`` and
``DJANGO_SETTINGS_MODULE`` come from its environment), so each run can point at a
database of its own:

    python benchmarks/appdb.py configure EXCHANGE TIMEFRAME SYMBOL [SYMBOL ...]
    python benchmarks/appdb.py count-rows BOOK      # prints {"table": rows or null}
    python benchmarks/appdb.py outcome BOOK         # prints {"trades": n, "pnl": total}

``configure_markets`` is the one place that knows the models' fields: adjust it when
they change.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# The app of ``BENCH_CHECKOUT`` when set (see benchmarks/project.py), else this checkout.
sys.path.insert(0, os.environ.get("BENCH_CHECKOUT") or str(Path(__file__).resolve().parent.parent))

# The rows a run writes for its book, per table.
WRITTEN_TABLES = (
    "signals_signal",
    "signals_signaltransition",
    "signals_guarddecision",
    "signals_papertrade",
    "shadow_shadowtrade",
)
STRATEGY_PARAMS = {"max_hold": 48}


def configure_markets(*, exchange: str, timeframe: str, symbols: list[str]) -> None:
    """An enabled EMA-crossover strategy per market and both default guards."""
    from signals.models import StrategyConfig
    from signals.services import guard_configs_default

    for symbol in symbols:
        StrategyConfig.objects.create(
            name=f"bench ema {symbol}",
            kind="ema_crossover",
            params=STRATEGY_PARAMS,
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
        )
    guard_configs_default()


def count_rows(book_name: str) -> dict[str, int | None]:
    """Rows of each table in ``WRITTEN_TABLES`` that belong to the book (``None``: no such
    table). A table without a ``book_id`` counts through its ``signal_id``."""
    from django.db import connection

    counts: dict[str, int | None] = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM signals_book WHERE name = %s", [book_name])
        found = cursor.fetchone()
        if found is None:
            raise SystemExit(f"no book named {book_name!r}")
        book_id = found[0]
        tables = set(connection.introspection.table_names(cursor))
        for table in WRITTEN_TABLES:
            if table not in tables:
                counts[table] = None
                continue
            columns = {
                column.name
                for column in connection.introspection.get_table_description(cursor, table)
            }
            quoted = connection.ops.quote_name(table)
            if "book_id" in columns:
                cursor.execute(f"SELECT COUNT(*) FROM {quoted} WHERE book_id = %s", [book_id])
            elif "signal_id" in columns:
                cursor.execute(
                    f"SELECT COUNT(*) FROM {quoted} WHERE signal_id IN "
                    "(SELECT id FROM signals_signal WHERE book_id = %s)",
                    [book_id],
                )
            else:
                counts[table] = None
                continue
            counts[table] = cursor.fetchone()[0]
    return counts


def outcome(book_name: str) -> dict[str, float]:
    """The book's closed paper trades: how many and their total P&L (quote currency),
    what the benchmark compares with the peers' before it prints a ratio."""
    from django.db.models import Count, Sum

    from signals.models import Book, PaperTrade

    book = Book.objects.get(name=book_name)
    closed = PaperTrade.objects.filter(book=book, status=PaperTrade.Status.CLOSED)
    totals = closed.aggregate(trades=Count("id"), pnl=Sum("pnl"))
    return {"trades": totals["trades"], "pnl": float(totals["pnl"] or 0)}


def main(argv: list[str]) -> None:
    import django

    django.setup()
    command, *rest = argv[1:] or [""]
    if command == "configure" and len(rest) >= 3:
        exchange, timeframe, *symbols = rest
        configure_markets(exchange=exchange, timeframe=timeframe, symbols=symbols)
    elif command == "count-rows" and len(rest) == 1:
        print(json.dumps(count_rows(rest[0])))
    elif command == "outcome" and len(rest) == 1:
        print(json.dumps(outcome(rest[0])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
