"""Ablation legs are not books a page opens by default: the default book is never a leg,
and the book picker lists each leg under the book it belongs to, wide enough to read."""

import re

import pytest
from django.urls import reverse

from analytics.filters import default_book
from analytics.pages import load_pages
from signals.models import Book
from signals.tests.factories import BookFactory, SignalFactory

PAGES = sorted(load_pages())
GUARD = "max_open_positions"


def leg_of(book: Book, guard: str = GUARD) -> Book:
    leg = BookFactory(name=f"{book.name} without {guard}", ablation_of=book, without_guard=guard)
    SignalFactory(book=leg)
    return leg


@pytest.fixture
def ablated(db):
    """An older book, a newer book with two ablation legs made after it (the newest
    books of all), and a leg of a leg."""
    older = BookFactory(name="replay older")
    SignalFactory(book=older)
    book = BookFactory(name="replay testex BTC/USD 1h")
    SignalFactory(book=book)
    legs = [leg_of(book, "max_open_positions"), leg_of(book, "cooldown_after_stop")]
    legs.append(leg_of(legs[0], "duplicate_position"))
    return older, book, legs


def test_the_default_book_is_never_a_leg(ablated):
    _older, book, legs = ablated
    assert Book.objects.order_by("-created_at", "-id").first() == legs[-1]
    assert default_book() == book


def test_the_default_book_is_never_a_leg_even_when_only_legs_have_signals(db):
    book = BookFactory(name="replay without signals")
    leg_of(book)
    assert default_book() == book


@pytest.mark.django_db
def test_every_page_and_twin_opens_the_book_not_its_newest_leg(trader_client, ablated):
    _older, book, _legs = ablated
    for name in PAGES:
        twin = trader_client.get(reverse("analytics:api-page", args=[name])).json()
        assert twin["book"]["id"] == book.pk, name


def picker(html: str) -> str:
    return re.search(r'<select name="book".*?</select>', html, re.S).group(0)


@pytest.mark.django_db
def test_the_picker_lists_each_leg_under_its_book(trader_client, ablated):
    older, book, legs = ablated
    html = picker(trader_client.get(reverse("analytics:summary")).content.decode())

    options = re.findall(r'<option value="(\d+)"', html)
    # The books newest first, each followed by its legs (a leg's leg too), by name.
    assert options == [str(b.pk) for b in (book, legs[1], legs[0], legs[2], older)]
    group = re.search(
        r'<optgroup label="ablation legs of replay testex BTC/USD 1h">(.*?)</optgroup>', html, re.S
    )
    assert group is not None, html
    assert all(f'value="{leg.pk}"' in group.group(1) for leg in legs)
    assert f'value="{book.pk}"' not in group.group(1)
    assert f"{legs[0].name} (1 signal)" in group.group(1)


@pytest.mark.django_db
def test_a_leg_opened_from_the_picker_is_selected_under_its_book(trader_client, ablated):
    _older, _book, legs = ablated
    html = trader_client.get(reverse("analytics:guards"), {"book": legs[0].pk}).content.decode()
    assert f'<option value="{legs[0].pk}" selected>' in picker(html)
    assert f'title="{legs[0].name}"' in picker(html)


MEASURE = """s => {
    const style = getComputedStyle(s);
    const canvas = document.createElement("canvas").getContext("2d");
    canvas.font = style.font;
    const text = s.options[s.selectedIndex].text.trim();
    const room = s.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const row = s.closest("form").clientWidth;
    return [text, room, canvas.measureText(text).width, s.getBoundingClientRect().width, row];
}"""


@pytest.mark.django_db(transaction=True)
def test_the_picker_is_wide_enough_to_show_a_leg_name(browser_session):
    book = BookFactory(name="replay kraken BTC/USD 5m 2024")
    SignalFactory(book=book)
    leg = leg_of(book)

    page = browser_session.open(f"/guards/?book={leg.pk}")
    select = page.locator('select[name="book"]')
    text, room, needed, _width, _row = select.evaluate(MEASURE)
    assert text.startswith(leg.name)
    # The selected option's text in the select's own font fits the room it is given.
    assert room >= needed, (room, needed)

    # A phone: the picker takes its row's whole width (the name cannot fit 390 px).
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(50)
    _text, _room, _needed, width, row = select.evaluate(MEASURE)
    assert width >= 0.8 * row, (width, row)
    browser_session.check_layout("book-picker-leg")
