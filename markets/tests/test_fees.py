"""Fee rates from ccxt's exchange classes (no network)."""

from decimal import Decimal

from markets.fees import exchange_taker_fee


def test_it_reads_the_taker_fee_ccxt_declares():
    assert exchange_taker_fee("kraken") == Decimal("0.0026")
    assert exchange_taker_fee("binance") == Decimal("0.001")


def test_it_knows_nothing_of_an_exchange_ccxt_does_not_have():
    assert exchange_taker_fee("synthetic") is None
    assert exchange_taker_fee("file") is None
