"""``{{ price|price }}``: a price or quantity to six significant digits (at least two
decimals), grouped: 30,163.73 and 0.000123457 alike; an en dash for nothing."""

from decimal import Decimal

from django import template
from django.template.defaultfilters import floatformat

from analytics.views import price_places

register = template.Library()


@register.filter
def price(value: Decimal | float | str | None) -> str:
    if value is None or value == "":
        return "\N{EN DASH}"
    number = Decimal(str(value))
    return str(floatformat(number, price_places(number)))
