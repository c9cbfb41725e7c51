"""Sizing a trader would use, in the pure engine: a reference notional converted at each
signal's candle close (no lookahead), a fixed notional per quote, or sizing by risk."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from markets.bars import CandleArrays
from signals.domain import engine
from signals.tests.test_engine import HOUR, config, outcome, walk

ETH_BTC = "x ETH/BTC 1h"
BTC_USD = "x BTC/USD 1h"


def eth_btc_book(sizing: engine.QuoteSizing, **changes) -> engine.EngineConfig:
    base = config(symbols=("ETH/BTC",), guards=())
    return replace(base, sizing={"BTC": sizing}, **changes)


def btc_usd(count: int) -> CandleArrays:
    data = walk(count, 7)
    # Around 30,000 USD a BTC.
    return CandleArrays(
        data.time,
        data.open * 300,
        data.high * 300,
        data.low * 300,
        data.close * 300,
        data.volume,
    )


def eth_btc(count: int) -> CandleArrays:
    data = walk(count, 1)
    # Around 0.05 BTC an ETH.
    return CandleArrays(
        data.time,
        data.open / 2000,
        data.high / 2000,
        data.low / 2000,
        data.close / 2000,
        data.volume,
    )


def entered(result: engine.EngineResult) -> dict[engine.SignalKey, float]:
    """Each shadow trade's entry value in the quote currency (quantity * entry price)."""
    return {
        t.key: (t.result or t.trade).quantity * (t.result or t.trade).entry_price
        for t in result.trades
        if t.kind == "shadow" and (t.result or t.trade) is not None
    }


def test_a_btc_quoted_market_trades_1000_usd_of_btc_at_each_signals_close():
    sizing = engine.QuoteSizing(notional=1000.0, convert=BTC_USD)
    cfg = eth_btc_book(sizing)
    rates = btc_usd(600)
    result = engine.run(cfg, engine.EngineState(), {ETH_BTC: eth_btc(600), BTC_USD: rates})

    values = entered(result)
    assert len(values) > 20
    by_key = {s.key: s for s in result.signals}
    for key, value in values.items():
        close_time = by_key[key].candle_time + HOUR
        # The conversion candle that closed with the signal's candle, never a later one.
        index = int(np.flatnonzero(rates.time + HOUR == close_time)[0])
        assert value == pytest.approx(1000.0 / rates.close[index], rel=1e-12)
        assert 0.01 < value < 0.1  # BTC, as a person trades: not 1,000 BTC


def test_the_conversion_never_uses_a_candle_closed_after_the_signal():
    sizing = engine.QuoteSizing(notional=1000.0, convert=BTC_USD)
    cfg = eth_btc_book(sizing)
    rates = btc_usd(600)
    whole = engine.run(cfg, engine.EngineState(), {ETH_BTC: eth_btc(600), BTC_USD: rates})
    # Later conversion candles wildly different: nothing already decided may change.
    later = CandleArrays(
        rates.time,
        rates.open,
        rates.high,
        rates.low,
        np.where(np.arange(600) >= 300, rates.close * 5, rates.close),
        rates.volume,
    )
    changed = engine.run(cfg, engine.EngineState(), {ETH_BTC: eth_btc(600), BTC_USD: later})
    early = {k: v for k, v in entered(whole).items() if k[1] + HOUR < rates.time[300] + HOUR}
    assert early
    assert {k: entered(changed)[k] for k in early} == early


def test_a_signal_before_any_conversion_rate_is_rejected_with_the_reason():
    sizing = engine.QuoteSizing(notional=1000.0, convert=BTC_USD)
    cfg = eth_btc_book(sizing)
    rates = btc_usd(600).tail(300)  # the rates start halfway
    result = engine.run(cfg, engine.EngineState(), {ETH_BTC: eth_btc(600), BTC_USD: rates})
    first_rate_close = int(rates.time[0]) + HOUR
    early = [s for s in result.signals if s.candle_time + HOUR < first_rate_close]
    assert early and all(s.state == "rejected" for s in early)
    reasons = {t.payload["reason"] for t in result.transitions if t.name == "reject"}
    assert any("no x BTC/USD 1h candle closed" in r for r in reasons)
    assert any(s.state != "rejected" for s in result.signals)


def test_sizing_by_risk_loses_the_fraction_of_the_balance_at_the_stop():
    sizing = engine.QuoteSizing(notional=1000.0, risk_fraction=0.01)
    cfg = eth_btc_book(sizing, balance_by_quote={"BTC": 0.5})
    result = engine.run(cfg, engine.EngineState(), {ETH_BTC: eth_btc(600)})
    by_key = {s.key: s for s in result.signals}
    trades = [t for t in result.trades if t.kind == "shadow" and t.result is not None]
    assert len(trades) > 20
    for t in trades:
        proposal = by_key[t.key].proposal
        notional = t.result.quantity * t.result.entry_price
        # Sized on the signal's close: that much of the balance is lost from its price.
        at_risk = notional / proposal.entry_price * abs(proposal.entry_price - proposal.stop_loss)
        assert at_risk == pytest.approx(0.005, rel=1e-12)


def test_a_quote_without_conversion_trades_its_fixed_notional_and_balance():
    sizing = engine.QuoteSizing(notional=0.02)
    cfg = eth_btc_book(sizing, balance_by_quote={"BTC": 0.05})
    result = engine.run(cfg, engine.EngineState(), {ETH_BTC: eth_btc(800)})
    values = entered(result)
    assert values and all(v == pytest.approx(0.02, rel=1e-12) for v in values.values())
    # 0.05 BTC pays for two open trades at most: the rest fail, visibly.
    failed = [t for t in result.transitions if t.name == "fail"]
    assert failed
    assert "BTC free, 0.02 BTC needed" in failed[0].payload["reason"]


def test_converted_sizes_carry_across_runs_as_one_run():
    sizing = engine.QuoteSizing(notional=1000.0, convert=BTC_USD)
    cfg = eth_btc_book(sizing, balance_by_quote={"BTC": 0.1})
    data = {ETH_BTC: eth_btc(700), BTC_USD: btc_usd(700)}
    whole = engine.run(cfg, engine.EngineState(), data)
    assert any(s.state == "failed" for s in whole.signals)
    state, runs = engine.EngineState(), []
    for stop in (90, 91, 300, 555, 700):
        result = engine.run(cfg, state, {k: a.head(stop) for k, a in data.items()})
        runs.append(result)
        state = engine.EngineState.from_json(json.loads(json.dumps(result.state.to_json())))
    assert outcome(runs) == outcome([whole])
    assert state == whole.state
