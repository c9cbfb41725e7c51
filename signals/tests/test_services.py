"""The signal side's writes on the real database: configuration versions, the books'
frozen copies of them, the engine configuration of a book and single transitions."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django_fsm import TransitionNotAllowed

from signals.domain.engine import Market
from signals.domain.guards import GUARDS, CooldownAfterStop, MaxOpenPositions
from signals.domain.params import default_params
from signals.domain.strategies import STRATEGIES, EmaCrossover
from signals.models import (
    Book,
    BookGuard,
    BookStrategy,
    GuardConfig,
    SignalState,
    SignalTransition,
    StrategyConfig,
)
from signals.services import (
    book_configure,
    book_follow_enabled,
    book_live,
    config_problem,
    engine_config,
    engine_config_of,
    fill_costs,
    guard_config_save,
    guard_configs_default,
    signal_transition,
    strategy_config_default,
    strategy_config_save,
)
from signals.tests.factories import BookFactory, SignalFactory, StrategyConfigFactory

pytestmark = pytest.mark.django_db

MOMENT = datetime(2024, 1, 1, 5, tzinfo=UTC)


def saved_strategy(**fields) -> StrategyConfig:
    return strategy_config_save(config=StrategyConfigFactory.build(**fields))


def saved_guard(name: str, kind: str = "max_open_positions", **params) -> GuardConfig:
    return guard_config_save(config=GuardConfig(name=name, kind=kind, params=params))


def frozen_strategies(book: Book) -> list[tuple]:
    return list(
        BookStrategy.objects.filter(book=book)
        .order_by("name", "config_version")
        .values_list("name", "config_version", "params", "symbol", "active")
    )


def frozen_guards(book: Book) -> list[tuple]:
    return list(
        BookGuard.objects.filter(book=book)
        .order_by("name", "config_version")
        .values_list("name", "config_version", "kind", "params", "active")
    )


# --- versions ------------------------------------------------------------------------


def test_a_new_configuration_starts_at_version_1():
    assert saved_strategy().version == 1
    assert saved_guard("max").version == 1


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"fast": 5, "slow": 10}},
        {"kind": "other_kind"},
        {"exchange": "otherex"},
        {"symbol": "ETH/USD"},
        {"timeframe": "4h"},
    ],
    ids=["params", "kind", "exchange", "symbol", "timeframe"],
)
def test_a_strategy_edit_of_what_it_computes_raises_the_version(change):
    config = saved_strategy(params={"fast": 5})
    for field, value in change.items():
        setattr(config, field, value)
    strategy_config_save(config=config)
    assert StrategyConfig.objects.get(pk=config.pk).version == 2


@pytest.mark.parametrize(
    "change",
    [{}, {"name": "renamed"}, {"enabled": False}, {"params": {"fast": 5}}],
    ids=["nothing", "name", "enabled", "equal-params"],
)
def test_a_strategy_edit_of_anything_else_keeps_the_version(change):
    config = saved_strategy(params={"fast": 5})
    fresh = StrategyConfig.objects.get(pk=config.pk)
    for field, value in change.items():
        setattr(fresh, field, value)
    strategy_config_save(config=fresh)
    assert StrategyConfig.objects.get(pk=config.pk).version == 1


def test_each_edit_raises_the_version_by_one():
    config = saved_strategy(params={"fast": 5})
    for fast in (6, 7, 8):
        config.params = {"fast": fast}
        strategy_config_save(config=config)
    # Back to the first parameters: still a new version, the old ones are history.
    config.params = {"fast": 5}
    strategy_config_save(config=config)
    assert StrategyConfig.objects.get(pk=config.pk).version == 5


def test_an_edit_of_a_stale_copy_still_takes_a_new_version():
    config = saved_strategy(params={"fast": 5})
    stale = StrategyConfig.objects.get(pk=config.pk)
    config.params = {"fast": 6}
    strategy_config_save(config=config)
    stale.params = {"fast": 7}
    strategy_config_save(config=stale)
    assert StrategyConfig.objects.get(pk=config.pk).version == 3


def test_a_guard_edit_of_kind_or_parameters_raises_the_version():
    guard = saved_guard("limits", max_open=1)
    guard.params = {"max_open": 2}
    assert guard_config_save(config=guard).version == 2
    guard.kind, guard.params = "cooldown_after_stop", {}
    assert guard_config_save(config=guard).version == 3
    guard.name, guard.enabled = "renamed", False
    assert guard_config_save(config=guard).version == 3
    assert GuardConfig.objects.get(pk=guard.pk).version == 3


def test_an_in_place_edit_of_the_parameters_raises_the_version():
    guard = saved_guard("limits", max_open=1)
    guard.params["max_open"] = 4
    guard_config_save(config=guard)
    assert GuardConfig.objects.get(pk=guard.pk).version == 2


# --- defaults ------------------------------------------------------------------------


def test_default_guards_are_named_after_their_kind_and_made_once():
    first = guard_configs_default()
    again = guard_configs_default()
    assert [(g.name, g.kind, g.params, g.enabled) for g in first] == [
        ("max_open_positions", "max_open_positions", {}, True),
        ("cooldown_after_stop", "cooldown_after_stop", {}, True),
    ]
    assert [g.pk for g in again] == [g.pk for g in first]
    assert GuardConfig.objects.count() == 2


def test_default_guards_leave_an_edited_default_alone():
    guard_configs_default()
    edited = GuardConfig.objects.get(name="max_open_positions")
    edited.params = {"max_open": 3}
    guard_config_save(config=edited)
    guard_configs_default()
    assert GuardConfig.objects.get(name="max_open_positions").params == {"max_open": 3}
    assert GuardConfig.objects.count() == 2


def test_the_default_strategy_is_made_once_per_market():
    market = {"exchange": "testex", "symbol": "BTC/USD", "timeframe": "1h"}
    config = strategy_config_default(**market)
    assert (config.name, config.kind, config.params, config.enabled) == (
        "ema_crossover testex BTC/USD 1h",
        "ema_crossover",
        {},
        True,
    )
    assert strategy_config_default(**market).pk == config.pk
    assert strategy_config_default(**{**market, "symbol": "ETH/USD"}).pk != config.pk


def test_two_guard_configurations_of_one_kind_coexist_under_different_names():
    one = saved_guard("max 1", max_open=1)
    three = saved_guard("max 3", max_open=3)
    assert GuardConfig.objects.filter(kind="max_open_positions").count() == 2
    assert (one.version, three.version) == (1, 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        GuardConfig.objects.create(name="max 1", kind="cooldown_after_stop")


def test_config_problem_names_the_field_and_the_error():
    assert config_problem(StrategyConfigFactory.build()) is None
    assert config_problem(StrategyConfigFactory.build(params={"fast": 40})) == (
        "params: ema_crossover needs 1 < fast < slow"
    )
    assert "timeframe: unknown timeframe '1y'" in config_problem(
        StrategyConfigFactory.build(timeframe="1y")
    )
    assert config_problem(GuardConfig(name="g", kind="max_open_positions")) is None
    assert config_problem(GuardConfig(name="g", kind="drawdown")) == (
        f"params: unknown guard kind 'drawdown'; known: {', '.join(sorted(GUARDS))}"
    )


# --- books freeze their configuration ------------------------------------------------


def test_a_book_keeps_the_parameters_it_was_configured_with():
    strategy = saved_strategy(name="ema", params={"fast": 5, "slow": 10})
    guard = saved_guard("max", max_open=2)
    book = BookFactory()
    book_configure(book=book, strategies=[strategy], guards=[guard])
    before = (frozen_strategies(book), frozen_guards(book))
    config_before = engine_config(book=book)

    strategy.params = {"fast": 7, "slow": 20}
    strategy.symbol = "ETH/USD"
    strategy_config_save(config=strategy)
    guard.params = {"max_open": 9}
    guard_config_save(config=guard)

    assert before == (
        [("ema", 1, {"fast": 5, "slow": 10}, "BTC/USD", True)],
        [("max", 1, "max_open_positions", {"max_open": 2}, True)],
    )
    assert (frozen_strategies(book), frozen_guards(book)) == before
    config = engine_config(book=book)
    assert config == config_before
    assert config.strategies[0].strategy == EmaCrossover(fast=5, slow=10)
    assert config.strategies[0].market == Market("testex", "BTC/USD", "1h")
    assert config.guards[0].guard == MaxOpenPositions(max_open=2)


def test_a_book_keeps_its_guards_when_the_configuration_is_deleted():
    guard = saved_guard("max", max_open=2)
    book = BookFactory()
    book_configure(book=book, strategies=[], guards=[guard])
    guard.delete()
    assert frozen_guards(book) == [("max", 1, "max_open_positions", {"max_open": 2}, True)]
    assert BookGuard.objects.get(book=book).config is None
    assert engine_config(book=book).guards[0].guard == MaxOpenPositions(max_open=2)


def test_a_book_freezes_the_version_it_was_configured_with():
    strategy = saved_strategy(name="ema", params={"fast": 5})
    strategy.params = {"fast": 6}
    strategy_config_save(config=strategy)
    book = BookFactory()
    book_configure(book=book, strategies=[strategy], guards=[])
    assert frozen_strategies(book) == [("ema", 2, {"fast": 6}, "BTC/USD", True)]


# --- the live book follows the enabled configurations --------------------------------


def test_the_live_book_takes_on_every_enabled_configuration_once():
    saved_strategy(name="ema a", params={"fast": 5})
    saved_strategy(name="ema off", enabled=False)
    saved_guard("max 1", max_open=1)
    saved_guard("max 3", max_open=3)
    guard_config_save(config=GuardConfig(name="off", kind="cooldown_after_stop", enabled=False))
    book = book_live()

    changes = book_follow_enabled(book=book)

    assert changes == (["strategy ema a v1", "guard max 1 v1", "guard max 3 v1"], [])
    assert frozen_strategies(book) == [("ema a", 1, {"fast": 5}, "BTC/USD", True)]
    assert [g[:2] for g in frozen_guards(book)] == [("max 1", 1), ("max 3", 1)]
    assert book_follow_enabled(book=book) == ([], [])
    assert BookStrategy.objects.count() == 1
    assert BookGuard.objects.count() == 2


def test_the_live_book_freezes_a_new_version_and_retires_the_old_one():
    strategy = saved_strategy(name="ema", params={"fast": 5})
    guard = saved_guard("max", max_open=1)
    book = book_live()
    book_follow_enabled(book=book)

    strategy.params = {"fast": 6}
    strategy_config_save(config=strategy)
    guard.params = {"max_open": 4}
    guard_config_save(config=guard)
    changes = book_follow_enabled(book=book)

    assert changes == (["strategy ema v2", "guard max v2"], [])
    assert frozen_strategies(book) == [
        ("ema", 1, {"fast": 5}, "BTC/USD", False),
        ("ema", 2, {"fast": 6}, "BTC/USD", True),
    ]
    assert frozen_guards(book) == [
        ("max", 1, "max_open_positions", {"max_open": 1}, False),
        ("max", 2, "max_open_positions", {"max_open": 4}, True),
    ]
    config = engine_config(book=book)
    assert [s.strategy for s in config.strategies] == [EmaCrossover(fast=6)]
    assert [g.guard for g in config.guards] == [MaxOpenPositions(max_open=4)]


def test_an_edit_that_keeps_the_version_changes_nothing_in_the_live_book():
    strategy = saved_strategy(name="ema", params={"fast": 5})
    book = book_live()
    book_follow_enabled(book=book)
    strategy.params = {"fast": 5}  # saved again as it was
    strategy_config_save(config=strategy)
    assert book_follow_enabled(book=book) == ([], [])
    assert frozen_strategies(book) == [("ema", 1, {"fast": 5}, "BTC/USD", True)]


def test_the_live_book_retires_what_was_disabled():
    strategy = saved_strategy(name="ema")
    guard = saved_guard("max", max_open=1)
    book = book_live()
    book_follow_enabled(book=book)

    strategy.enabled = False
    strategy_config_save(config=strategy)
    guard.enabled = False
    guard_config_save(config=guard)
    changes = book_follow_enabled(book=book)

    assert changes == (["strategy ema retired", "guard max retired"], [])
    assert [row[-1] for row in frozen_strategies(book)] == [False]
    assert [row[-1] for row in frozen_guards(book)] == [False]
    config = engine_config(book=book)
    assert (config.strategies, config.guards) == ((), ())


def test_the_live_book_leaves_out_an_invalid_configuration_and_says_why():
    saved_strategy(name="broken", params={"fast": 40})
    saved_strategy(name="good", params={"fast": 5, "slow": 12})
    bad = GuardConfig(name="bad", kind="max_open_positions", params={"max_open": -1})
    guard_config_save(config=bad)
    book = book_live()

    changes, problems = book_follow_enabled(book=book)

    assert changes == ["strategy good v1"]
    assert problems == [
        "strategy 'broken': params: ema_crossover needs 1 < fast < slow",
        "guard 'bad': params: max_open_positions needs max_open >= 0",
    ]
    assert [s.name for s in engine_config(book=book).strategies] == ["good"]
    assert engine_config(book=book).guards == ()


def test_the_live_book_retires_a_configuration_that_became_invalid():
    strategy = saved_strategy(name="ema")
    book = book_live()
    book_follow_enabled(book=book)
    # Saved around the admin's validation, as a script could.
    StrategyConfig.objects.filter(pk=strategy.pk).update(params={"fast": 40})

    changes, problems = book_follow_enabled(book=book)

    assert changes == ["strategy ema retired"]
    assert problems == ["strategy 'ema': params: ema_crossover needs 1 < fast < slow"]
    assert engine_config(book=book).strategies == ()


def test_the_live_book_takes_back_a_strategy_that_was_disabled_then_enabled_again():
    strategy = saved_strategy(name="ema")
    book = book_live()
    book_follow_enabled(book=book)
    strategy.enabled = False
    strategy_config_save(config=strategy)
    book_follow_enabled(book=book)

    strategy.enabled = True
    strategy_config_save(config=strategy)
    book_follow_enabled(book=book)

    assert [s.name for s in engine_config(book=book).strategies] == ["ema"]


def test_the_live_book_takes_back_a_guard_that_was_disabled_then_enabled_again():
    guard = saved_guard("max", max_open=1)
    book = book_live()
    book_follow_enabled(book=book)
    guard.enabled = False
    guard_config_save(config=guard)
    book_follow_enabled(book=book)

    guard.enabled = True
    guard_config_save(config=guard)
    book_follow_enabled(book=book)

    assert [g.name for g in engine_config(book=book).guards] == ["max"]


# --- the engine configuration of a book ----------------------------------------------


def test_the_engine_configuration_orders_strategies_and_guards_by_name(settings):
    settings.FILL_SLIPPAGE_BPS = Decimal("5")
    settings.FILL_FEE_RATE = Decimal("0.0026")
    settings.FILL_NOTIONAL = Decimal("1000")
    book = BookFactory()
    strategies = [
        saved_strategy(name=name, symbol=symbol, params={"fast": fast})
        for name, symbol, fast in [("b", "BBB/USD", 4), ("c", "CCC/USD", 5), ("a", "AAA/USD", 6)]
    ]
    guards = [
        saved_guard("z cooldown", "cooldown_after_stop", minutes=30),
        saved_guard("max 3", max_open=3),
        saved_guard("max 1", max_open=1),
    ]
    book_configure(book=book, strategies=strategies, guards=guards)

    config = engine_config(book=book, max_signal_age=timedelta(minutes=90))

    assert [(s.name, s.market.symbol, s.strategy.fast) for s in config.strategies] == [
        ("a", "AAA/USD", 6),
        ("b", "BBB/USD", 4),
        ("c", "CCC/USD", 5),
    ]
    assert [(g.name, g.guard) for g in config.guards] == [
        ("max 1", MaxOpenPositions(max_open=1)),
        ("max 3", MaxOpenPositions(max_open=3)),
        ("z cooldown", CooldownAfterStop(minutes=30)),
    ]
    assert config.costs == fill_costs()
    assert (config.costs.slippage_bps, config.costs.fee_rate, config.costs.notional) == (
        5.0,
        0.0026,
        1000.0,
    )
    assert config.max_signal_age_ms == 90 * 60_000
    assert engine_config(book=book).max_signal_age_ms is None
    assert list(config.markets()) == ["testex AAA/USD 1h", "testex BBB/USD 1h", "testex CCC/USD 1h"]


def test_the_engine_configuration_of_a_book_is_its_own():
    mine, other = BookFactory(), BookFactory()
    book_configure(book=mine, strategies=[saved_strategy(name="mine")], guards=[])
    book_configure(
        book=other, strategies=[saved_strategy(name="theirs")], guards=[saved_guard("max")]
    )
    config = engine_config(book=mine)
    assert [s.name for s in config.strategies] == ["mine"]
    assert config.guards == ()


@pytest.mark.parametrize("kind", sorted(STRATEGIES))
def test_every_valid_strategy_configuration_builds(kind):
    cls = STRATEGIES[kind]
    for number, params in enumerate(({}, default_params(cls))):
        config = saved_strategy(name=f"{kind} {number}", kind=kind, params=params)
        config.refresh_from_db()  # the parameters as they come back from the database
        assert config_problem(config) is None
        built = engine_config_of(strategies=[config], guards=[]).strategies[0].strategy
        assert built == cls()


@pytest.mark.parametrize("kind", sorted(GUARDS))
def test_every_valid_guard_configuration_builds(kind):
    cls = GUARDS[kind]
    for number, params in enumerate(({}, default_params(cls))):
        guard = saved_guard(f"{kind} {number}", kind, **params)
        guard.refresh_from_db()
        assert config_problem(guard) is None
        assert engine_config_of(strategies=[], guards=[guard]).guards[0].guard == cls()


def test_whole_number_parameters_of_float_fields_build():
    config = saved_strategy(params={"stop_atr": 2, "target_atr": 4, "allow_short": False})
    config.refresh_from_db()
    built = engine_config_of(strategies=[config], guards=[]).strategies[0].strategy
    assert built == EmaCrossover(stop_atr=2.0, target_atr=4.0, allow_short=False)


# --- single transitions --------------------------------------------------------------


def test_a_transition_records_when_it_happened_in_market_time():
    signal = SignalFactory()
    signal_transition(signal=signal, name="approve", simulated_at=MOMENT, payload={"x": 1})
    signal_transition(signal=signal, name="execute", simulated_at=MOMENT + timedelta(hours=1))

    rows = list(
        SignalTransition.objects.filter(signal=signal).values_list(
            "name", "from_state", "to_state", "actor", "payload", "simulated_at"
        )
    )
    assert rows == [
        ("approve", "generated", "approved", "system", {"x": 1}, MOMENT),
        ("execute", "approved", "executed", "system", {}, MOMENT + timedelta(hours=1)),
    ]
    signal.refresh_from_db()
    assert signal.state == SignalState.EXECUTED


def test_a_transition_without_a_market_time_leaves_it_empty():
    signal = SignalFactory()
    signal_transition(signal=signal, name="block", actor="tester")
    row = SignalTransition.objects.get(signal=signal)
    assert (row.simulated_at, row.actor) == (None, "tester")
    assert row.created_at is not None


def test_a_refused_transition_writes_nothing():
    signal = SignalFactory()
    with pytest.raises(TransitionNotAllowed):
        signal_transition(signal=signal, name="close", simulated_at=MOMENT)
    assert not SignalTransition.objects.exists()
    assert SignalFactory._meta.model.objects.get(pk=signal.pk).state == SignalState.GENERATED


@pytest.mark.django_db
def test_a_guard_made_again_under_an_old_name_never_reuses_a_frozen_version():
    from signals.models import Book, BookGuard, GuardConfig
    from signals.services import book_configure, guard_config_save

    book = Book.objects.create(name="a replay", kind=Book.Kind.REPLAY)
    first = guard_config_save(
        config=GuardConfig(name="tight", kind="max_open_positions", params={"max_open": 1})
    )
    book_configure(book=book, strategies=[], guards=[first])
    first.delete()
    again = guard_config_save(
        config=GuardConfig(name="tight", kind="max_open_positions", params={"max_open": 5})
    )
    assert again.version == 2
    assert BookGuard.objects.get(book=book).params == {"max_open": 1}
