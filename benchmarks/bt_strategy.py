# mypy: disable-error-code="import-untyped,import-not-found"
"""The yardstick: the same strategy in backtesting.py, a popular event-driven backtester.

``var/bench-venv/bin/python benchmarks/bt_strategy.py CANDLES.csv`` (the benchmark's own
virtualenv, from ``benchmarks/requirements.txt``, so the app's dependencies stay as
they are). It reads the CSV with pandas and runs ``Backtest(...).run()`` with the
project's strategy: EMA 12/26 crossover on closes, long when fast - slow goes from <= 0
to > 0, short when it goes from >= 0 to < 0; stop 1.5 ATR(14) and target 3 ATR from the
close; entry at the next open (backtesting.py's market orders), exit on the stop or
target (its sl/tp) or after 48 candles; one position at a time. It prints the trade
count. backtesting.py keeps no history in a database, so "project time / this time"
says what persistence and the pipeline cost against a tool people already use.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd
from backtesting import Backtest, Strategy

from benchmarks.indicators import atr, ema

# Prices far above the default cash of 10,000 only draw warnings; 0.26 % per side is the
# project's FILL_FEE_RATE. Every trade is one unit, like the project's fixed notional per
# trade: a size in % of equity would shrink to nothing as fees eat the equity, and
# backtesting.py then skips the trades.
CASH = 10_000_000
COMMISSION = 0.0026
UNITS = 1


class EmaCrossoverAtr(Strategy):
    fast = 12
    slow = 26
    atr_period = 14
    stop_atr = 1.5
    target_atr = 3.0
    max_hold = 48

    def init(self) -> None:
        close = self.data.Close
        self.fast_ema = self.I(ema, close, self.fast)
        self.slow_ema = self.I(ema, close, self.slow)
        self.range = self.I(atr, self.data.High, self.data.Low, close, self.atr_period)

    def next(self) -> None:
        index = len(self.data) - 1
        for trade in self.trades:
            # Closing here fills at the next open, i.e. at the close of the last held candle.
            if index - trade.entry_bar >= self.max_hold - 1:
                trade.close()
        if self.position or self.orders:
            return
        before = self.fast_ema[-2] - self.slow_ema[-2]
        now = self.fast_ema[-1] - self.slow_ema[-1]
        distance = self.range[-1]
        if not distance > 0:
            return
        close = self.data.Close[-1]
        if before <= 0 < now:
            self.buy(
                size=UNITS,
                sl=close - self.stop_atr * distance,
                tp=close + self.target_atr * distance,
            )
        elif before >= 0 > now:
            self.sell(
                size=UNITS,
                sl=close + self.stop_atr * distance,
                tp=close - self.target_atr * distance,
            )


def read_csv(path: Path) -> pd.DataFrame:
    """The candle CSV as backtesting.py's frame: a time index and capitalised OHLCV columns."""
    frame = pd.read_csv(path)
    frame.index = pd.to_datetime(frame.pop("timestamp_ms"), unit="ms", utc=True)
    return frame.rename(columns=str.capitalize)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(f"usage: {argv[0]} CANDLES.csv")
    candles = read_csv(Path(argv[1]))
    backtest = Backtest(
        candles, EmaCrossoverAtr, cash=CASH, commission=COMMISSION, finalize_trades=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = backtest.run()
    print(f"candles: {len(candles)}")
    print(f"return: {stats['Return [%]']:.2f} %")
    print(f"trades: {stats['# Trades']}")


if __name__ == "__main__":
    main(sys.argv)
