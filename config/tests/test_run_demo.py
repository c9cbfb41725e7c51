"""``make run``'s script on a candle file: migrate, load, replay, create the admin, serve."""

import json
import re

from config.tests.demo_server import demo_server, logged_in_page
from signals.tests.candles import walk


def test_it_serves_the_replayed_book_behind_the_login(tmp_path):
    candles = tmp_path / "candles.json"
    candles.write_text(
        json.dumps(
            [[int(t.timestamp() * 1000), o, h, lo, c, 2.0] for t, o, h, lo, c in walk(400, seed=11)]
        )
    )
    with demo_server(tmp_path, CANDLES=str(candles)) as (base, log):
        text = log.read_text()
        assert "Loading candles from" in text
        assert "Replay done into book 'replay file BTC/USD 1h'" in text
        assert "Created admin account 'trader'" in text
        # Each phase of the replay's progress only ever goes forward, and ends at 100 %.
        shown: dict[str, list[int]] = {}
        for phase, percent in re.findall(r"replay: (engine|writing):\s+(\d+)%", text):
            shown.setdefault(phase, []).append(int(percent))
        assert set(shown) == {"engine", "writing"}, text
        for percents in shown.values():
            assert percents == sorted(percents) and percents[-1] == 100, shown

        page = logged_in_page(base, "/guards/")
        assert "Guard effectiveness" in page
        assert "replay file BTC/USD 1h" in page
        assert "cooldown_after_stop" in page or "max_open_positions" in page


def test_a_second_run_keeps_the_secret_key_of_its_env_file_and_your_own_lines(tmp_path):
    offline = {
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "SYMBOLS": "BTC/USD",
        "DEMO_CANDLES": "400",
    }
    with demo_server(tmp_path, **offline) as (_base, log):
        first = (tmp_path / ".env").read_text()
        assert "Wrote the demo's settings to" in log.read_text()
    (tmp_path / ".env").write_text(first + "FILL_NOTIONAL=500\n")
    with demo_server(tmp_path, **offline) as (base, log):
        text = log.read_text()
        assert "Using the demo's settings in" in text
        assert "AXES: BEGIN" not in text
        second = (tmp_path / ".env").read_text()
        assert "Guard effectiveness" in logged_in_page(base, "/guards/")

    def values(text: str) -> dict[str, str]:
        return dict(line.split("=", 1) for line in text.splitlines())

    assert values(second)["SECRET_KEY"] == values(first)["SECRET_KEY"]
    assert values(second)["FILL_NOTIONAL"] == "500"
    assert values(second)["DATABASE_URL"] == f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert values(second)["SECRET_KEY"] not in text
