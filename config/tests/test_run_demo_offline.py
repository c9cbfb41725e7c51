"""``make run`` with no exchange in reach: several synthetic markets, enough history for
every default guard to reach a verdict, served within two minutes."""

import sqlite3
import time

from config.tests.demo_server import demo_server, logged_in_page


def test_offline_it_replays_several_synthetic_markets_and_every_guard_has_a_verdict(tmp_path):
    started = time.monotonic()
    # A proxy that refuses every connection: the exchange is out of reach at once.
    with demo_server(
        tmp_path, HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9"
    ) as (
        base,
        log,
    ):
        assert time.monotonic() - started < 120
        text = log.read_text()
        assert "generating SYNTHETIC candles" in text
        assert "Replay done into book 'replay synthetic 1h 4 markets'" in text

        with sqlite3.connect(tmp_path / "db.sqlite3") as db:
            outcomes = dict(
                db.execute(
                    "SELECT d.guard, COUNT(*) FROM signals_guarddecision d "
                    "JOIN shadow_shadowtrade s ON s.signal_id = d.signal_id "
                    "WHERE d.verdict = 'block' AND s.status = 'closed' GROUP BY d.guard"
                ).fetchall()
            )
        assert set(outcomes) == {"max_open_positions", "cooldown_after_stop"}
        assert min(outcomes.values()) >= 30, outcomes

        page = logged_in_page(base, "/guards/")
        assert "synthetic" in page.lower()
        # Each default guard says whether it saves money by skill or only by trading less
        # (the synthetic strategies lose on average, so any block "saves money").
        honest = ("saves money by skill", "saves money only by trading less", "costs money")
        assert sum(page.count(f">{verdict}</span>") for verdict in honest) >= 2, page
        assert "The strategies lose money on average" in page
