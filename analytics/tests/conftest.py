"""Personas for the page tests: an anonymous visitor and a logged-in trader (the
read-only role of ``analytics.roles``)."""

import pytest


@pytest.fixture
def trader(django_user_model):
    """A non-staff account with the read-only trader role. (It used to be a bare account:
    reading the pages now takes the role's permissions, which a bare account lacks.)"""
    from analytics.roles import trader_add

    user = django_user_model.objects.create_user(username="trader", password="not-used")
    trader_add(user=user)
    return user


@pytest.fixture
def trader_client(client, trader):
    client.force_login(trader)
    return client


@pytest.fixture(scope="session")
def chromium():
    """One Playwright driver and one headless Chromium for all the browser tests of a test
    process (starting them took 3-8 s a test); each test gets a fresh browser context
    (``browser_page``), so no cookie or storage passes from one test to the next.

    Playwright's sync API keeps its event loop marked as running in this thread while it
    is started, and Django then refuses queries ("async context"). Between browser tests
    the loop is parked (``asyncio._set_running_loop(None)``), so the other tests see no
    loop; ``browser_page`` puts it back for its test."""
    import asyncio
    import os

    from playwright.sync_api import sync_playwright

    from analytics.tests.browser import CHROMIUM, launch

    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    playwright = sync_playwright().start()
    loop = asyncio._get_running_loop()
    try:
        browser = launch(playwright)
    except BaseException:
        playwright.stop()
        raise
    asyncio._set_running_loop(None)
    try:
        yield browser, loop
    finally:
        asyncio._set_running_loop(loop)
        try:
            browser.close()
        finally:
            playwright.stop()
            asyncio._set_running_loop(None)


@pytest.fixture
def browser_page(chromium):
    """A new page in a new context of the shared Chromium, 1,280 by 900. Queries from the
    test body are allowed while Playwright's loop runs in this thread
    (``DJANGO_ALLOW_ASYNC_UNSAFE``), so a test can check a page against the database."""
    import asyncio
    import os

    browser, loop = chromium
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    asyncio._set_running_loop(loop)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()
    finally:
        asyncio._set_running_loop(None)
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_session(live_server, django_user_model, browser_page):
    """A logged-in superuser in headless Chromium (``analytics.tests.browser``)."""
    from analytics.tests.browser import PASSWORD, BrowserSession, log_in

    django_user_model.objects.create_superuser("browser", "b@example.org", PASSWORD)
    page = browser_page
    session = BrowserSession(page=page, base_url=live_server.url)
    page.on(
        "console",
        lambda msg: session.console_errors.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: session.console_errors.append(str(exc)))
    log_in(page, live_server.url, "browser")
    return session


@pytest.fixture
def replayed_book(db):
    """A replay book over 600 generated hourly candles of testex BTC/USD (seed 11): a few
    dozen signals, approved and blocked, with paper and shadow trades."""

    from signals.models import Book
    from signals.tests.candles import store_walk

    store_walk(600, seed=11)
    from analytics.tests.factories import replay_testex

    replay_testex()
    return Book.objects.get(kind=Book.Kind.REPLAY)


@pytest.fixture
def broker(settings):
    """The test Redis database with every Celery queue emptied. Not FLUSHDB: that
    would also drop kombu's queue bindings, which a publisher declares only once per
    connection, and later messages would be routed nowhere."""
    import redis

    from analytics.pages.health import PRIORITY_SUFFIXES, queue_names

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = [name + suffix for name in queue_names() for suffix in PRIORITY_SUFFIXES]
    keys += ["unacked", "unacked_index"]
    client.delete(*keys)
    yield client
    client.delete(*keys)
    client.close()
