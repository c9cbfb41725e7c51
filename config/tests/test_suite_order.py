"""The suite's own scheduling: the files conftest.py starts first exist and are in the
order their processes take them."""

from pathlib import Path

import conftest

ROOT = Path(__file__).resolve().parents[2]


def test_every_slow_file_listed_exists_once():
    missing = [path for path in conftest.SLOW_FILES if not (ROOT / path).is_file()]
    assert missing == [], "stale entries in conftest.SLOW_FILES"
    assert len(set(conftest.SLOW_FILES)) == len(conftest.SLOW_FILES)


class _Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def test_the_hook_puts_the_slow_files_first_in_their_order_and_keeps_the_rest():
    items = [_Item(f"{path}::t{i}") for i, path in enumerate(["a.py", *conftest.SLOW_FILES[1::-1]])]
    conftest.pytest_collection_modifyitems(items)
    assert [item.nodeid.split("::")[0] for item in items] == [*conftest.SLOW_FILES[:2], "a.py"]


def test_this_sessions_slow_files_came_first(request):
    paths = [item.nodeid.split("::", 1)[0] for item in request.session.items]
    listed = [path for path in paths if path in conftest.SLOW_FILES]
    assert paths[: len(listed)] == listed, "listed files first"
    order = list(dict.fromkeys(listed))
    assert order == [path for path in conftest.SLOW_FILES if path in order]
