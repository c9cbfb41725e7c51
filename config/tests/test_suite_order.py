"""The suite's own scheduling: the files conftest.py starts first exist and are in the
order their processes take them."""

from pathlib import Path

import conftest

ROOT = Path(__file__).resolve().parents[2]


def test_every_slow_file_listed_exists_once():
    missing = [path for path in conftest.SLOW_FILES if not (ROOT / path).is_file()]
    assert missing == [], "stale entries in conftest.SLOW_FILES"
    assert len(set(conftest.SLOW_FILES)) == len(conftest.SLOW_FILES)


def test_the_slow_files_come_first_and_keep_each_files_order(request):
    items = request.session.items
    paths = [item.nodeid.split("::", 1)[0] for item in items]
    if len(set(paths)) < 20:
        # A run of a few files (-k, one path): check the hook on a synthetic list instead.
        class Item:
            def __init__(self, nodeid):
                self.nodeid = nodeid

        fake = [Item(f"{p}::t{i}") for i, p in enumerate(["a.py", *conftest.SLOW_FILES[:2]])]
        conftest.pytest_collection_modifyitems(fake)
        paths = [item.nodeid.split("::", 1)[0] for item in fake]
        assert paths == [*conftest.SLOW_FILES[:2], "a.py"]
        return
    listed = [path for path in paths if path in conftest.SLOW_FILES]
    first = paths[: len(listed)]
    assert first == listed, "listed files first"
    order = list(dict.fromkeys(listed))
    assert order == [path for path in conftest.SLOW_FILES if path in order]
