"""Replaying stored markets into a replay book of their own: what ``manage.py replay``
does, as a service the command, tests and other callers share.

``replay_prepare`` checks the request and freezes what the replay will run (the enabled
strategies of those markets and the enabled guards, creating the defaults when none are
configured, each creation noted); ``replay_prepared`` runs it through
``shadow.replay.replay_run`` and reads the book's figures; ``replay_markets`` does both.
A request refused before anything is written raises ``ReplayRequestError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from markets.selectors import (
    candle_count,
    candle_sources_of_markets,
    candles_stored,
    markets_stored,
)
from shadow.replay import Progress, ReplayRefusedError, ReplayResult, live_book_named, replay_run
from shadow.selectors import BookSummary, OpportunityCost, book_summary, opportunity_cost
from signals.models import GuardConfig, StrategyConfig
from signals.services import config_problem, guard_configs_default, strategy_config_default


class ReplayRequestError(ReplayRefusedError):
    """A replay request refused before anything is written. ``argument`` names the
    request's argument at fault when one is (``"book"``), so a caller can point at its
    own spelling of it (the command writes ``--book``)."""

    def __init__(self, message: str, *, argument: str = "") -> None:
        super().__init__(message)
        self.argument = argument


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """A checked replay request with what it will run. ``candles`` is the stored candles
    of its markets up to ``until`` (the progress estimate); ``notes`` what preparing it
    created (default strategies or guards), in order."""

    name: str
    exchange: str
    symbols: list[str]
    timeframe: str
    since: datetime | None
    until: datetime | None
    strategies: list[StrategyConfig]
    guards: list[GuardConfig]
    sources: list[str]
    candles: int
    notes: list[str] = field(default_factory=list)

    @property
    def synthetic(self) -> bool:
        """Some of its candles were generated, not market data."""
        return "synthetic" in self.sources

    @property
    def description(self) -> str:
        """The book's description: its markets, range and where the candles came from."""
        since = f", from {self.since:%Y-%m-%d %H:%M}" if self.since else ""
        until = f", until {self.until:%Y-%m-%d %H:%M}" if self.until else ""
        return (
            f"{self.exchange} {', '.join(self.symbols)} {self.timeframe}{since}{until} UTC, "
            f"data: {', '.join(self.sources)}"
        )


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """A finished replay: its plan, what ``replay_run`` returned, and the book's figures."""

    plan: ReplayPlan
    result: ReplayResult
    summary: BookSummary
    cost: OpportunityCost


def default_book_name(*, exchange: str, symbols: Sequence[str], timeframe: str) -> str:
    """The replay book's name when none is given."""
    if len(symbols) == 1:
        return f"replay {exchange} {symbols[0]} {timeframe}"
    return f"replay {exchange} {timeframe} {len(symbols)} markets"


def replay_prepare(
    *,
    exchange: str,
    timeframe: str,
    symbols: Sequence[str] | None,
    since: datetime | None = None,
    until: datetime | None = None,
    book: str | None = None,
) -> ReplayPlan:
    """Check a replay of ``symbols`` (``None``: every market stored for ``exchange`` at
    ``timeframe``; repeats are dropped) from ``since`` to ``until`` into the replay book
    ``book`` (default ``default_book_name``) and freeze what it will run.

    Refuses (``ReplayRequestError``) a market with no stored candles in the range, a name
    that reads as a live book's, a disabled default strategy, and any configuration that
    does not build; the live check comes before any default is created."""
    if symbols is None:
        symbols = markets_stored(exchange=exchange, timeframe=timeframe)
        if not symbols:
            raise ReplayRequestError(f"no stored candles for {exchange} at {timeframe}")
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        raise ReplayRequestError("no market to replay")
    for symbol in symbols:
        if not candles_stored(
            exchange=exchange, symbol=symbol, timeframe=timeframe, since=since, until=until
        ):
            raise ReplayRequestError(
                f"no stored candles for {exchange} {symbol} {timeframe} in that range; "
                "load some first with load_candles, fetch_candles or generate_candles"
            )
    name = book or default_book_name(exchange=exchange, symbols=symbols, timeframe=timeframe)
    live = live_book_named(name)
    if live is not None:
        which = "" if live == name else f" {live!r}"
        raise ReplayRequestError(
            f"{name!r} is the live book{which} (names are compared regardless of case and "
            "spaces); a replay never writes into it: name another",
            argument="book",
        )

    notes: list[str] = []
    strategies = _strategies(exchange, symbols, timeframe, notes)
    if not GuardConfig.objects.exists():
        defaults = guard_configs_default()
        notes.append(
            f"No guards configured: enabled {', '.join(g.name for g in defaults)} "
            "(default parameters)."
        )
    guards = list(GuardConfig.objects.filter(enabled=True))
    problems = [f"strategy {c.name!r}: {e}" for c in strategies if (e := config_problem(c))]
    problems += [f"guard {g.name!r}: {e}" for g in guards if (e := config_problem(g))]
    if problems:
        raise ReplayRequestError(
            "fix these configurations in the admin first: " + "; ".join(problems)
        )
    sources = candle_sources_of_markets((exchange, symbol, timeframe) for symbol in symbols)
    candles = sum(
        candle_count(exchange=exchange, symbol=symbol, timeframe=timeframe, until=until)
        for symbol in symbols
    )
    return ReplayPlan(
        name=name,
        exchange=exchange,
        symbols=symbols,
        timeframe=timeframe,
        since=since,
        until=until,
        strategies=strategies,
        guards=guards,
        sources=sources,
        candles=candles,
        notes=notes,
    )


def _strategies(
    exchange: str, symbols: Sequence[str], timeframe: str, notes: list[str]
) -> list[StrategyConfig]:
    """The enabled strategies of each market; a market with none gets the default one
    (noted), unless that exists and is disabled."""
    strategies: list[StrategyConfig] = []
    for symbol in symbols:
        market = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
        found = list(StrategyConfig.objects.filter(enabled=True, **market))
        if not found:
            config = strategy_config_default(**market)
            if not config.enabled:
                raise ReplayRequestError(
                    f"strategy configuration {config.name!r} exists but is disabled"
                )
            found = [config]
            notes.append(
                f"No enabled strategy for {symbol}: created {config.name!r} (default parameters)."
            )
        strategies.extend(found)
    return strategies


def replay_prepared(plan: ReplayPlan, *, on_progress: Progress | None = None) -> ReplayOutcome:
    """Run ``plan`` into its book (replacing a replay book of that name) and read the
    book's figures. ``on_progress`` as ``replay_run`` reports it."""
    result = replay_run(
        name=plan.name,
        description=plan.description,
        strategies=plan.strategies,
        guards=plan.guards,
        since=plan.since,
        until=plan.until,
        on_progress=on_progress,
    )
    return ReplayOutcome(
        plan=plan,
        result=result,
        summary=book_summary(book=result.book),
        cost=opportunity_cost(book=result.book),
    )


def replay_markets(
    *,
    exchange: str,
    timeframe: str,
    symbols: Sequence[str] | None,
    since: datetime | None = None,
    until: datetime | None = None,
    book: str | None = None,
    on_progress: Progress | None = None,
) -> ReplayOutcome:
    """``replay_prepare`` then ``replay_prepared``: one call for a caller with no output
    between the two."""
    plan = replay_prepare(
        exchange=exchange, timeframe=timeframe, symbols=symbols, since=since, until=until, book=book
    )
    return replay_prepared(plan, on_progress=on_progress)
