from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from markets.bars import Bar
from markets.services import candles_upsert

pytestmark = pytest.mark.django_db


def test_candle_changelist_shows_candles_with_filters_and_no_add_button(admin_client):
    bar = Bar(datetime(2024, 1, 1, tzinfo=UTC), Decimal(1), Decimal(2), Decimal(1), Decimal(2))
    candles_upsert(exchange="kraken", symbol="BTC/USD", timeframe="1h", bars=[bar], source="file")

    response = admin_client.get(
        reverse("admin:markets_candle_changelist"), {"source": "file", "q": "BTC"}
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert "BTC/USD" in content
    assert "By source" in content
    assert reverse("admin:markets_candle_add") not in content
    assert admin_client.get(reverse("admin:markets_candle_add")).status_code == 403
