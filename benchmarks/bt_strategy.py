# mypy: disable-error-code="import-untyped,import-not-found"
"""The yardstick: the same book in backtesting.py, a popular event-driven backtester.

``var/bench-venv/bin/python benchmarks/bt_strategy.py CANDLES.csv`` (the benchmark's own
virtualenv, from ``benchmarks/requirements.txt``, so the app's dependencies stay as
they are). It reads the CSV with pandas and runs ``Backtest(...).run()`` with the
project's strategy and the benchmark book's rules, as ``benchmarks/floor.py`` states
them: EMA 12/26 crossover on closes, long when fast - slow goes from <= 0 to > 0, short
when it goes from >= 0 to < 0; stop 1.5 ATR(14) and target 3 ATR from the close; entry
at the next open (backtesting.py's market orders), exit on the stop or target (its
sl/tp) or at the close of the 48th candle held; one position at a time, none while the
240-minute cooldown after a stop-out runs; 5 bps of slippage against every fill and
0.26 % fees per side on the filled prices; every trade sized at a 1,000 quote notional
at its entry fill. It prints the closed trades' count and their total P&L.

What backtesting.py (0.6.6, pinned) does not do by itself, and how it is made to:

- slippage: its ``spread`` moves the entry fill against the trade, exactly as the
  project's slippage does; the exit fill it leaves unmoved, so ``_SlippedBroker``
  moves it (one multiplication in its broker's ``_close_trade``), which also puts the
  exit fee on the slipped price, as the project does;
- an exit at a candle's close: ``trade.close()`` fills at the next open, so a trade's
  48th candle closes it at that candle's close through the same broker method;
- sizing by quote notional at the fill: it trades whole units, sized when the order is
  placed. ``FractionalBacktest`` trades units of ``UNIT`` BTC (2**-27, about 7.5e-9, a
  power of two so the scaled prices compare and round exactly as the real ones), and
  an order sized as a fraction of equity is turned into units at its fill price: the
  fraction below makes that ``floor(notional / entry fill / UNIT)`` units, short of
  the project's ``notional / entry fill`` by less than one unit.

backtesting.py keeps no history in a database, so "project time / this time" says what
persistence and the pipeline cost against a tool people already use.
"""

from __future__ import annotations

import sys
import warnings
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd
from backtesting import Strategy
from backtesting.backtesting import _Broker
from backtesting.lib import FractionalBacktest

from benchmarks.indicators import atr, ema

# Cash far above what one 1,000 notional trade needs: the balance never binds, as the
# project's benchmark book runs with a paper balance that never binds either.
CASH = 10_000_000
FEE_RATE = 0.0026  # the project's FILL_FEE_RATE, per side
SLIPPAGE = 5 / 10_000  # FILL_SLIPPAGE_BPS
NOTIONAL = 1000.0  # FILL_NOTIONAL, quote currency
UNIT = 2.0**-27  # BTC per unit traded
COOLDOWN = pd.Timedelta(minutes=240)


class _SlippedBroker(_Broker):
    """backtesting.py's broker with the project's exit fill: every exit price moved
    against the trade by the slippage (``spread`` already moves the entry). Records when
    the latest stop-out happened (its stop order fired; a gap through the stop fills at
    the open)."""

    stopped_at: pd.Timestamp | None = None

    def _close_trade(self, trade, price, time_index):  # type: ignore[no-untyped-def]
        sl_order = trade._sl_order
        if sl_order is not None and sl_order.stop is None:  # the stop was hit
            self.stopped_at = self._data.index[time_index]
        slipped = price * (1 - SLIPPAGE) if trade.size > 0 else price * (1 + SLIPPAGE)
        super()._close_trade(trade, slipped, time_index)


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
        broker = self._broker
        for trade in self.trades:
            # The 48th candle held (the entry candle is the first): out at its close, now.
            if index - trade.entry_bar >= self.max_hold - 1:
                broker._close_trade(trade, self.data.Close[-1], index)
        if self.position or self.orders:
            return
        stopped_at = broker.stopped_at
        if stopped_at is not None and self.data.index[-1] - stopped_at < COOLDOWN:
            return
        before = self.fast_ema[-2] - self.slow_ema[-2]
        now = self.fast_ema[-1] - self.slow_ema[-1]
        distance = self.range[-1]
        if not distance > 0:
            return
        close = self.data.Close[-1]
        # A fraction of equity that backtesting.py turns, at the fill, into
        # floor(equity * fraction / (fill + fee on the open)) units: floor(NOTIONAL / fill).
        equity = self.equity
        if before <= 0 < now:
            self.buy(
                size=NOTIONAL * (1 + FEE_RATE / (1 + SLIPPAGE)) / equity,
                sl=close - self.stop_atr * distance,
                tp=close + self.target_atr * distance,
            )
        elif before >= 0 > now:
            self.sell(
                size=NOTIONAL * (1 + FEE_RATE / (1 - SLIPPAGE)) / equity,
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
    backtest = FractionalBacktest(
        candles,
        EmaCrossoverAtr,
        cash=CASH,
        spread=SLIPPAGE,
        commission=FEE_RATE,
        fractional_unit=UNIT,
    )
    backtest._broker = partial(_SlippedBroker, **backtest._broker.keywords)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = backtest.run()
    trades = stats["_trades"]
    print(f"candles: {len(candles)}")
    print(f"trades: {len(trades)}")
    print(f"pnl: {float(trades['PnL'].sum())!r}")


if __name__ == "__main__":
    main(sys.argv)
