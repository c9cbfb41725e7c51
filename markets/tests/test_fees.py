"""Fee rates from ccxt's exchange classes (no network)."""

from decimal import Decimal

from markets.fees import exchange_taker_fee


def test_it_reads_the_taker_fee_ccxt_declares():
    assert exchange_taker_fee("kraken") == Decimal("0.0026")
    assert exchange_taker_fee("binance") == Decimal("0.001")


def test_it_knows_nothing_of_an_exchange_ccxt_does_not_have():
    assert exchange_taker_fee("synthetic") is None
    assert exchange_taker_fee("file") is None


def test_an_exchange_ccxt_lacks_costs_no_import_of_ccxt():
    import subprocess
    import sys

    code = (
        "import sys; from markets.fees import exchange_taker_fee; "
        "assert exchange_taker_fee('synthetic') is None; print('ccxt' in sys.modules)"
    )
    from django.conf import settings

    done = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True
    )
    assert done.stdout.strip() == "False", done.stderr
