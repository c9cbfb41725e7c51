"""Writes of the signal side: configurations and their versions, the books' frozen
copies of them, and single state transitions of a signal with their log row.

The pipeline itself runs in the pure engine (``signals.domain.engine``); the drivers
that feed it candles and write what it returns sit at the top of the write side
(``shadow.replay`` and ``shadow.live``), because they write shadow trades too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from markets.fees import exchange_taker_fee
from signals.domain.engine import EngineConfig, GuardSpec, Market, StrategySpec
from signals.domain.fills import FillCosts
from signals.domain.guards import build_guard
from signals.domain.strategies import build_strategy
from signals.economics import (
    economics_costs,
    economics_seed,
    economics_sizing,
    economics_with_quotes,
)
from signals.models import (
    Book,
    BookGuard,
    BookStrategy,
    GuardConfig,
    Signal,
    SignalTransition,
    StrategyConfig,
)

logger = logging.getLogger("signals")

LIVE_BOOK = "live"
SYSTEM = "system"
DEFAULT_GUARDS = ("max_open_positions", "cooldown_after_stop")


def fill_costs(*, fee_rate: Decimal | None = None) -> FillCosts:
    """The configured slippage and notional of the fill model, with ``fee_rate`` (default
    the configured one), as floats: the engine's numeric code runs on floats; outcomes
    are stored back as ``Decimal``. A book trades on its frozen copy instead
    (``signals.economics``)."""
    return economics_costs(economics_seed(), fee_rate)


def market_fee_rate(*, exchange: str) -> Decimal:
    """The fee per side on ``exchange``: its taker fee as ccxt knows it, else the
    configured ``FILL_FEE_RATE`` (synthetic data, files, exchanges ccxt lacks)."""
    known = exchange_taker_fee(exchange)
    return known if known is not None else settings.FILL_FEE_RATE


def book_live() -> Book:
    """The book the running system trades in (created on first use)."""
    book, _ = Book.objects.get_or_create(
        name=LIVE_BOOK, defaults={"kind": Book.Kind.LIVE, "economics": economics_seed()}
    )
    return book


def book_economics(
    *, book: Book, markets: Iterable[Market] = (), start: datetime | None = None
) -> dict[str, Any]:
    """``book``'s frozen economics, with every quote currency of ``markets`` settled (and
    saved) the first time the book meets it, its balance converted as of the book's
    ``since``, else ``start`` (the live driver's moment). A book that never froze any
    (made before books froze their economics and not migrated, or by hand) takes today's
    settings now, once."""
    economics = book.economics or economics_seed()
    settled = economics_with_quotes(economics, markets=markets, start=book.since or start)
    if settled != book.economics:
        book.economics = settled
        Book.objects.filter(pk=book.pk).update(economics=settled)
    return settled


def signal_transition(
    *,
    signal: Signal,
    name: str,
    actor: str = SYSTEM,
    payload: dict[str, Any] | None = None,
    simulated_at: datetime | None = None,
) -> Signal:
    """Apply transition ``name`` to ``signal`` and log it, both in one transaction.

    Raises ``TransitionNotAllowed`` from a state the transition does not leave, and
    ``ConcurrentTransition`` when another worker moved the signal first; either way
    nothing is written.
    """
    from_state = signal.state
    with transaction.atomic():
        getattr(signal, name)()
        signal.save()
        SignalTransition.objects.create(
            signal=signal,
            name=name,
            from_state=from_state,
            to_state=signal.state,
            actor=actor,
            payload=payload or {},
            simulated_at=simulated_at,
        )
    logger.info("[STATE-MACHINE] signal=%s %s: %s -> %s", signal.pk, name, from_state, signal.state)
    return signal


def config_problem(config: StrategyConfig | GuardConfig) -> str | None:
    """Why a strategy or guard configuration cannot run, or ``None``."""
    try:
        config.clean()
    except ValidationError as error:
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return None


def strategy_config_save(*, config: StrategyConfig) -> StrategyConfig:
    """Save ``config``, raising its version when what it computes changed (kind,
    parameters, market or whether it places real orders), so books that froze the old
    version are told apart."""
    _bump_version(config, ("kind", "params", "exchange", "symbol", "timeframe", "live"))
    config.save()
    return config


def guard_config_save(*, config: GuardConfig) -> GuardConfig:
    """Save ``config``, raising its version when its kind or parameters changed."""
    _bump_version(config, ("kind", "params"))
    config.save()
    return config


def _bump_version(config: StrategyConfig | GuardConfig, fields: Sequence[str]) -> None:
    if config.pk is None:
        # A configuration deleted and made again under its old name must not reuse a
        # version a book froze with other parameters.
        frozen = BookStrategy if isinstance(config, StrategyConfig) else BookGuard
        used = frozen.objects.filter(name=config.name).aggregate(Max("config_version"))
        config.version = (used["config_version__max"] or 0) + 1
        return
    before = type(config).objects.filter(pk=config.pk).values(*fields, "version").first()
    if before is None:
        return
    # Counted from the stored row, never from this object's copy: a stale object or a
    # history revert carries an old number and must not move the version backwards.
    changed = any(before[f] != getattr(config, f) for f in fields)
    config.version = before["version"] + 1 if changed else before["version"]


def strategy_config_default(*, exchange: str, symbol: str, timeframe: str) -> StrategyConfig:
    """An enabled EMA-crossover configuration for one market, with default parameters."""
    config, _ = StrategyConfig.objects.get_or_create(
        name=f"ema_crossover {exchange} {symbol} {timeframe}",
        defaults={
            "kind": "ema_crossover",
            "params": {},
            "exchange": exchange,
            "symbol": symbol,
            "timeframe": timeframe,
        },
    )
    return config


def guard_configs_default() -> list[GuardConfig]:
    """Both built-in guards, enabled with their default parameters, unless already configured."""
    return [
        GuardConfig.objects.get_or_create(name=kind, defaults={"kind": kind})[0]
        for kind in DEFAULT_GUARDS
    ]


def book_configure(
    *,
    book: Book,
    strategies: Sequence[StrategyConfig | BookStrategy],
    guards: Sequence[GuardConfig | BookGuard],
) -> None:
    """Freeze each configuration into ``book``: its current version, or, given another
    book's frozen rows (an ablation leg), the very versions that book ran. The book runs
    these copies, whatever happens to the configurations afterwards."""
    BookStrategy.objects.bulk_create(
        BookStrategy(
            book=book,
            config_id=s.config_id if isinstance(s, BookStrategy) else s.pk,
            config_version=_version(s),
            name=s.name,
            kind=s.kind,
            params=s.params,
            exchange=s.exchange,
            symbol=s.symbol,
            timeframe=s.timeframe,
            live=s.live,
            fee_rate=_fee_rate(s, book.economics or None),
        )
        for s in strategies
    )
    BookGuard.objects.bulk_create(
        BookGuard(
            book=book,
            config_id=_config_id(g),
            config_version=_version(g),
            name=g.name,
            kind=g.kind,
            params=g.params,
        )
        for g in guards
    )


def _config_id(config: GuardConfig | BookGuard) -> int | None:
    return config.config_id if isinstance(config, BookGuard) else config.pk


def _version(config: StrategyConfig | GuardConfig | BookStrategy | BookGuard) -> int:
    if isinstance(config, BookStrategy | BookGuard):
        return config.config_version
    return config.version


def book_follow_enabled(*, book: Book) -> tuple[list[str], list[str]]:
    """Bring the live ``book`` to the enabled configurations: freeze new ones and new
    versions, retire what was disabled or replaced, take back what was enabled again.
    Returns what changed and which enabled configurations were left out as invalid."""
    with transaction.atomic():
        strategies = _follow(
            book,
            "strategy",
            StrategyConfig.objects.filter(enabled=True),
            BookStrategy,
            lambda config: book_configure(book=book, strategies=[config], guards=[]),
        )
        guards = _follow(
            book,
            "guard",
            GuardConfig.objects.filter(enabled=True),
            BookGuard,
            lambda config: book_configure(book=book, strategies=[], guards=[config]),
        )
    return strategies[0] + guards[0], strategies[1] + guards[1]


def _follow(
    book: Book,
    label: str,
    enabled: Iterable[Any],
    frozen: type[BookStrategy] | type[BookGuard],
    freeze: Callable[[Any], None],
) -> tuple[list[str], list[str]]:
    changes: list[str] = []
    problems: list[str] = []
    rows = frozen.objects.filter(book=book)
    held = {row.name: row for row in rows.filter(active=True)}
    for config in enabled:
        if problem := config_problem(config):
            problems.append(f"{label} {config.name!r}: {problem}")
            continue
        row = held.pop(config.name, None)
        if row and row.config_version == config.version:
            continue
        if row:
            rows.filter(pk=row.pk).update(active=False)
        # A version the book ran before (disabled, then enabled again) is taken back.
        if not rows.filter(name=config.name, config_version=config.version).update(active=True):
            freeze(config)
        changes.append(f"{label} {config.name} v{config.version}")
    for gone in held.values():
        rows.filter(pk=gone.pk).update(active=False)
        changes.append(f"{label} {gone.name} retired")
    return changes, problems


def engine_config(
    *, book: Book, max_signal_age: timedelta | None = None, now: datetime | None = None
) -> EngineConfig:
    """The engine configuration of ``book``: its active frozen strategies and guards (and
    the fees of every market it ever traded, so trades of a retired strategy finish on
    their market's terms), on the book's frozen economics (a quote currency met for the
    first time is settled as of ``now``)."""
    frozen = list(BookStrategy.objects.filter(book=book).order_by("config_version"))
    economics = book_economics(
        book=book, markets=[Market(s.exchange, s.symbol, s.timeframe) for s in frozen], start=now
    )
    return engine_config_of(
        strategies=[s for s in frozen if s.active],
        guards=BookGuard.objects.filter(book=book, active=True),
        max_signal_age=max_signal_age,
        fees_from=frozen,
        economics=economics,
    )


def _fee_rate(
    strategy: StrategyConfig | BookStrategy, economics: Mapping[str, Any] | None = None
) -> Decimal:
    # A book uses the rate it froze; a configuration not frozen yet, its exchange's (or,
    # where ccxt knows none, the book's frozen default).
    frozen = getattr(strategy, "fee_rate", None)
    if frozen is not None:
        return frozen
    known = exchange_taker_fee(strategy.exchange)
    if known is not None:
        return known
    return Decimal(economics["fee_rate"]) if economics else settings.FILL_FEE_RATE


def engine_config_of(
    *,
    strategies: Iterable[StrategyConfig | BookStrategy],
    guards: Iterable[GuardConfig | BookGuard],
    max_signal_age: timedelta | None = None,
    fees_from: Iterable[StrategyConfig | BookStrategy] | None = None,
    economics: Mapping[str, Any] | None = None,
) -> EngineConfig:
    """An engine configuration of these strategies and guards, each ordered by name (the
    order in which the engine decides signals of one candle and lists verdicts), on
    ``economics`` (a book's frozen ones; default: today's settings, quotes unsettled)."""
    strategies = list(strategies)
    if economics is None:
        economics = economics_seed()
    sizing, balances = economics_sizing(economics)
    return EngineConfig(
        strategies=tuple(
            StrategySpec(
                name=s.name,
                market=Market(s.exchange, s.symbol, s.timeframe),
                strategy=build_strategy(s.kind, s.params),
            )
            for s in sorted(strategies, key=lambda s: s.name)
        ),
        guards=tuple(
            GuardSpec(name=g.name, guard=build_guard(g.kind, g.params))
            for g in sorted(guards, key=lambda g: g.name)
        ),
        costs=economics_costs(economics),
        market_costs={
            Market(s.exchange, s.symbol, s.timeframe).key: economics_costs(
                economics, _fee_rate(s, economics)
            )
            for s in (fees_from if fees_from is not None else strategies)
        },
        starting_balance=float(economics["paper_balance"]),
        sizing=sizing,
        balance_by_quote=balances,
        max_signal_age_ms=(
            int(max_signal_age.total_seconds() * 1000) if max_signal_age is not None else None
        ),
    )
