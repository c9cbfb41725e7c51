"""The candles every benchmark runs on, written as CSV files in a temporary directory.

Real data when it is there: the FTX BTC-PERP 1m file in ``../shared/data`` (or
``$SHARED_DIR``), resampled to 5m (about 9,007 candles), and longer series made by
tiling it end to end, each copy scaled so it opens where the previous one closed, times
continuing on the 5m grid (ten copies: about 90,070 candles; past ten copies the scale
starts over every ten, 1 % higher each time, so a hundred copies stay near the month's
price level and no copy repeats another, which ``load_candles`` would reject as spliced
data). Without the file: a
seeded geometric random walk of the same sizes, labelled synthetic. The shared data is
only read, never copied into the repository.
"""

from __future__ import annotations

import csv
import math
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
REAL_FILE = Path("data/candles/ftx/btc-perp-20211231-20220201_1m.csv")
STEP_MS = 5 * 60 * 1000
# The real file resamples to this many 5m candles; synthetic data uses the same sizes.
SYNTHETIC_BASE = 9_007
SYNTHETIC_START = datetime(2022, 1, 1, tzinfo=UTC)
SYNTHETIC_SEED = 20220101
# No benchmark candle opens after this (a fixed moment, so every run writes the same files).
LATEST = datetime(2026, 1, 1, tzinfo=UTC)
# Named sizes: how many end-to-end copies of the one-month series.
NAMED_SIZES = {"9k": 1, "90k": 10, "900k": 100}
# Copies after which the tiling's scale starts over: compounded over a hundred copies,
# the month's move (about -17 %) would take BTC to a thousandth of a dollar. Each restart
# is RESTART_STEP above the one before, so no copy repeats an earlier one.
RESCALE = 10
RESTART_STEP = 1.01
HEADER = ("timestamp_ms", "open", "high", "low", "close", "volume")


class Candle(NamedTuple):
    """One OHLCV candle; ``time_ms`` is its open time in epoch milliseconds (UTC)."""

    time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class Series:
    """One size of the benchmark: its label (as asked for), candle count and CSV file."""

    label: str
    candles: int
    path: Path


def shared_dir() -> Path:
    """``../shared`` beside the checkout, or ``$SHARED_DIR`` (as the test suite reads it)."""
    return Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared"))


def read_1m(path: Path) -> list[Candle]:
    """The rows of the FTX 1m file (``timestamp`` is an ISO date-time in UTC), in time order."""
    candles = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            moment = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC)
            candles.append(
                Candle(
                    int(moment.timestamp() * 1000),
                    float(row["open"]),
                    float(row["high"]),
                    float(row["low"]),
                    float(row["close"]),
                    float(row["volume"]),
                )
            )
    candles.sort(key=lambda candle: candle.time_ms)
    return candles


def resample(candles: Iterable[Candle], step_ms: int = STEP_MS) -> list[Candle]:
    """Candles aggregated on the ``step_ms`` grid: first open, max high, min low, last close,
    summed volume. Empty steps stay empty (no candle is invented)."""
    out: list[Candle] = []
    for candle in candles:
        start = candle.time_ms - candle.time_ms % step_ms
        if out and out[-1].time_ms == start:
            last = out[-1]
            out[-1] = Candle(
                start,
                last.open,
                max(last.high, candle.high),
                min(last.low, candle.low),
                candle.close,
                last.volume + candle.volume,
            )
        else:
            out.append(candle._replace(time_ms=start))
    return out


def tile(base: Sequence[Candle], count: int, step_ms: int = STEP_MS) -> list[Candle]:
    """The first ``count`` candles of ``base`` repeated end to end: each copy has its prices
    scaled so it opens at the previous copy's last close (the scale starting over every
    ``RESCALE`` copies, one jump back near the first copy's level, ``RESTART_STEP`` above
    the previous restart), and its times shifted by the span of ``base`` so they stay on
    the grid."""
    span = base[-1].time_ms - base[0].time_ms + step_ms
    growth = base[-1].close / base[0].open
    out: list[Candle] = []
    copy = 0
    while len(out) < count:
        restart, within = divmod(copy, RESCALE)
        scale, shift = RESTART_STEP**restart * growth**within, span * copy
        out.extend(
            Candle(
                c.time_ms + shift,
                c.open * scale,
                c.high * scale,
                c.low * scale,
                c.close * scale,
                c.volume,
            )
            for c in base[: count - len(out)]
        )
        copy += 1
    return out


def random_walk(
    count: int, *, seed: int = SYNTHETIC_SEED, start_price: float = 46_000.0
) -> list[Candle]:
    """A seeded geometric random walk of 5m candles from ``SYNTHETIC_START``.

    The walk draws the same numbers for each candle whatever ``count`` is, so a shorter
    walk is the beginning of a longer one.
    """
    rng = random.Random(seed)
    start_ms = int(SYNTHETIC_START.timestamp() * 1000)
    price = start_price
    out = []
    for index in range(count):
        open_ = price
        close = open_ * math.exp(rng.gauss(0.0, 0.002))
        high = max(open_, close) * math.exp(abs(rng.gauss(0.0, 0.001)))
        low = min(open_, close) * math.exp(-abs(rng.gauss(0.0, 0.001)))
        volume = rng.lognormvariate(12.0, 1.0)
        out.append(Candle(start_ms + index * STEP_MS, open_, high, low, close, volume))
        price = close
    return out


def write_csv(candles: Iterable[Candle], path: Path) -> Path:
    """Write ``timestamp_ms,open,high,low,close,volume`` rows, as ``load_candles`` reads them.

    Prices keep six decimals; rounding is monotonic, so high >= open, close >= low still holds.
    """
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for c in candles:
            writer.writerow(
                (
                    c.time_ms,
                    f"{c.open:.6f}",
                    f"{c.high:.6f}",
                    f"{c.low:.6f}",
                    f"{c.close:.6f}",
                    f"{c.volume:.6f}",
                )
            )
    return path


def scaled(candles: Iterable[Candle], factor: float) -> list[Candle]:
    """The same candles with every price multiplied by ``factor`` (volumes unchanged)."""
    return [
        c._replace(
            open=c.open * factor, high=c.high * factor, low=c.low * factor, close=c.close * factor
        )
        for c in candles
    ]


def size_count(label: str, base_candles: int) -> int:
    """Candles for a size label: ``9k`` is the one-month series, ``90k`` ten copies of it,
    ``900k`` a hundred, a plain number that many candles."""
    if label in NAMED_SIZES:
        return NAMED_SIZES[label] * base_candles
    try:
        count = int(label)
    except ValueError:
        raise ValueError(
            f"unknown size {label!r}: use {', '.join(NAMED_SIZES)} or a number of candles"
        ) from None
    if count < 100:
        raise ValueError(f"size {label!r}: at least 100 candles are needed")
    return count


def ending_by(candles: list[Candle], latest_ms: int, step_ms: int = STEP_MS) -> list[Candle]:
    """``candles`` moved back in time, whole steps, so that none opens after
    ``latest_ms`` (``load_candles`` rejects candles from the future); unchanged when none
    does."""
    overshoot = candles[-1].time_ms - latest_ms if candles else 0
    if overshoot <= 0:
        return candles
    shift = -(-overshoot // step_ms) * step_ms
    return [c._replace(time_ms=c.time_ms - shift) for c in candles]


class Source:
    """Where the candles come from: the real file resampled to 5m, or a random walk."""

    def __init__(self) -> None:
        path = shared_dir() / REAL_FILE
        self.real = path.is_file()
        if self.real:
            self._base = resample(read_1m(path))
            self.description = f"real: FTX BTC-PERP 1m ({path}) resampled to 5m"
        else:
            self._base = []
            self.description = (
                f"SYNTHETIC: seeded geometric random walk ({path} is absent; set SHARED_DIR)"
            )

    @property
    def base_candles(self) -> int:
        return len(self._base) if self.real else SYNTHETIC_BASE

    def candles(self, count: int) -> list[Candle]:
        """The first ``count`` candles of this source, the last opening by ``LATEST``
        (a long series starts earlier: 900,700 5m candles span 8.6 years)."""
        candles = tile(self._base, count) if self.real else random_walk(count)
        return ending_by(candles, int(LATEST.timestamp() * 1000))


def prepare(source: Source, labels: Sequence[str], directory: Path) -> list[Series]:
    """Write one CSV per size label into ``directory``."""
    series = []
    for label in labels:
        count = size_count(label, source.base_candles)
        path = write_csv(source.candles(count), directory / f"candles-{label}.csv")
        series.append(Series(label=label, candles=count, path=path))
    return series


def prepare_markets(
    source: Source, count: int, factors: Sequence[float], directory: Path
) -> list[Path]:
    """One CSV per price factor: the first ``count`` candles of ``source``, scaled, so that
    several markets hold the same moves at different price levels."""
    candles = source.candles(count)
    return [
        write_csv(scaled(candles, factor), directory / f"market-{index}.csv")
        for index, factor in enumerate(factors)
    ]
