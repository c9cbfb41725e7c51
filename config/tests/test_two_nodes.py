"""Past one machine (issue 13, point 12): two worker nodes, each in a network namespace of
its own with its own address, consume the queues from one PostgreSQL and one Redis; one
node's network is cut in the middle of a book's run (a partition: its link goes down, the
process lives on). The book's work completes on the other node, or on the cut node once
its link is back, and the book's rows equal a clean replay's: nothing lost, nothing
written twice.

The test builds its own network on this machine and nothing leaves it: two namespaces,
each joined to the root namespace by a veth pair in 10.231.0.0/16 (a range used only on
these veths), a private redis-server and a private PostgreSQL (initdb in a temporary
directory) bound to 127.0.0.1 and the root-side veth addresses. The app's own TCP
keepalives and user timeout on every database connection (DATABASE_DEAD_PEER_SECONDS,
6 s here) are what frees a cut node's transaction, and its row locks, for the other node:
with the kernel's defaults (TWO_NODES_DEAD_PEER_SECONDS=7200) the first test fails, the
other node waiting on the lock for the whole cut. Skipped where network namespaces cannot
be made (not root, no ``ip``, no permission).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from config.tests.test_faults import (
    PG_BIN,
    QUEUES,
    Process,
    _free_port,
    _ping,
    _wait,
)

pytestmark = [pytest.mark.fault]

ROOT = Path(__file__).resolve().parents[2]
# The app's own keepalives and TCP user timeout on both ends of every database connection
# (config/settings.py) drop a dead peer within this many seconds (60 in production).
DEAD_PEER_SECONDS = os.environ.get("TWO_NODES_DEAD_PEER_SECONDS", "6")
CANDLES = 20000
NETNS_EXEC = ("ip", "netns", "exec")

SEED = """
from config.tests.test_faults import _markets
from signals.models import BookState
from signals.services import book_live
_markets({candles})
# The live book and its state row exist before the run, so the only row lock its run
# takes on signals_bookstate is the revision claim of its write (what the test watches).
BookState.objects.get_or_create(book=book_live())
"""


# The live book against a clean replay of the same candles: every row equal, and the
# signals lost (in the replay, not the book) and duplicated (in the book beyond the replay).
COMPARE = """
from collections import Counter
from io import StringIO
from django.core.management import call_command
from shadow.tests.book_rows import book_rows
from signals.models import Book
call_command("replay", "--exchange", "gen", "--all-symbols", "--timeframe", "1h",
             "--book", "reference", "--no-progress", stdout=StringIO())
live, reference = (book_rows(Book.objects.get(name=n)) for n in ("live", "reference"))
mine, theirs = Counter(live["signals"]), Counter(reference["signals"])
print("compare", len(live["signals"]), sum((theirs - mine).values()),
      sum((mine - theirs).values()), "EQUAL" if live == reference else "DIFFERENT")
"""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class Node:
    """A network namespace joined to the root namespace by a veth pair: ``host`` is the
    root side's address (where Redis and PostgreSQL listen for this node), ``address``
    the node's own."""

    def __init__(self, name: str, tag: str, octet: int) -> None:
        self.name = name
        self.netns = f"h8-{tag}-{name}"
        self.host_if = f"h8{tag}{name}h"  # at most 15 characters (IFNAMSIZ)
        self.node_if = f"h8{tag}{name}n"
        self.host = f"10.231.{octet}.1"
        self.address = f"10.231.{octet}.2"

    def create(self) -> None:
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.node_if)
        _ip("link", "set", self.node_if, "netns", self.netns)
        _ip("addr", "add", f"{self.host}/24", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("-n", self.netns, "addr", "add", f"{self.address}/24", "dev", self.node_if)
        _ip("-n", self.netns, "link", "set", self.node_if, "up")
        _ip("-n", self.netns, "link", "set", "lo", "up")

    def cut(self) -> None:
        """The partition: the node's only link goes down; its processes live on."""
        _ip("-n", self.netns, "link", "set", self.node_if, "down")

    def heal(self) -> None:
        _ip("-n", self.netns, "link", "set", self.node_if, "up")

    def destroy(self) -> None:
        # Deleting the namespace deletes its end of the pair, and with it the other end.
        for args in (("netns", "del", self.netns), ("link", "del", self.host_if)):
            with contextlib.suppress(RuntimeError):
                _ip(*args)


@pytest.fixture(scope="module")
def nodes() -> Iterator[dict[str, Node]]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2's ip")
    tag = f"{os.getpid() % 100000:05d}"
    octet = 2 + 2 * (os.getpid() % 120)
    made = {name: Node(name, tag, octet + i) for i, name in enumerate(("a", "b"))}
    try:
        try:
            _ip("netns", "add", f"h8-{tag}-probe")
            _ip("netns", "del", f"h8-{tag}-probe")
        except RuntimeError as exc:
            pytest.skip(f"ip netns is not permitted here: {exc}")
        for node in made.values():
            node.create()
        yield made
    finally:
        for node in made.values():
            node.destroy()


class Cluster:
    """One private PostgreSQL and one private Redis, reachable from both nodes."""

    def __init__(self, nodes: dict[str, Node], root: Path) -> None:
        self.nodes = nodes
        self.root = root
        self.pg_port = _free_port()
        self.redis_port = _free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.database = ""

    def pg_url(self, host: str = "127.0.0.1", database: str = "") -> str:
        return f"postgres://postgres@{host}:{self.pg_port}/{database or self.database}"

    def redis_url(self, host: str = "127.0.0.1") -> str:
        return f"redis://{host}:{self.redis_port}/0"

    def manage(self, database: str, *args: str) -> str:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": self.pg_url(database=database),
            "CELERY_BROKER_URL": self.redis_url(),
            "SIGNAL_MAX_AGE_MINUTES": str(60 * 24 * 365 * 5),
        }
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def new_database(self, name: str) -> str:
        """A fresh copy of the migrated and seeded database, the one every process uses
        from now."""
        with psycopg.connect(self.pg_url(database="postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE pristine')
        self.database = name
        redis.Redis.from_url(self.redis_url()).flushdb()
        return name

    def query(self, sql: str) -> list[tuple]:
        with psycopg.connect(self.pg_url(), autocommit=True) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def cluster(nodes: dict[str, Node]) -> Iterator[Cluster]:
    import pwd

    versions = sorted(PG_BIN.glob("*/bin/pg_ctl"))
    if not versions:
        pytest.skip("PostgreSQL server binaries are not installed")
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("redis-server is not installed")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres system user to run a private server")
    bin_dir = versions[-1].parent
    root = Path(tempfile.mkdtemp(prefix="two-nodes-pg-"))
    root.chmod(0o755)
    os.chown(root, owner.pw_uid, owner.pw_gid)
    data = root / "data"
    cluster = Cluster(nodes, root)
    hosts = [node.host for node in nodes.values()]
    as_postgres = ["runuser", "-u", "postgres", "--"]

    def pg_ctl(*args: str) -> None:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    started = False
    try:
        subprocess.run(
            [
                *as_postgres,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
        )
        with (data / "pg_hba.conf").open("a") as hba:
            for node in nodes.values():
                hba.write(f"host all all {node.address}/32 trust\n")
        listen = ",".join(["127.0.0.1", *hosts])
        options = f"-p {cluster.pg_port} -k {root} -c listen_addresses={listen} -c fsync=off"
        pg_ctl("-o", options, "-l", str(root / "log"), "start", "-w")
        started = True
        with psycopg.connect(cluster.pg_url(database="postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE pristine")
        cluster.manage("pristine", "migrate", "-v0")
        cluster.manage("pristine", "shell", "-c", SEED.format(candles=CANDLES))
        cluster.redis = subprocess.Popen(
            [
                redis_server,
                "--port",
                str(cluster.redis_port),
                "--bind",
                " ".join(["127.0.0.1", *hosts]),
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=cluster.redis_port)
        _wait(lambda: _ping(client), timeout=10, what="redis-server")
        yield cluster
    finally:
        if cluster.redis is not None:
            cluster.redis.kill()
            cluster.redis.wait()
        if started:
            pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)


class NodeWorker(Process):
    """A Celery worker process inside a node's namespace."""

    def __init__(self, node: Node, cluster: Cluster, log: Path, visibility: int) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": cluster.pg_url(host=node.host),
            "DATABASE_DEAD_PEER_SECONDS": DEAD_PEER_SECONDS,
            "CELERY_BROKER_URL": cluster.redis_url(host=node.host),
            "SIGNAL_MAX_AGE_MINUTES": str(60 * 24 * 365 * 5),
            "CELERY_VISIBILITY_TIMEOUT": str(visibility),
            "CELERY_UNACKED_RESTORE_INTERVAL": "1",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        }
        args = ["worker", "-P", "solo", "-c", "1", "-Q", QUEUES, "-n", f"node{node.name}@%h"]
        args += ["--without-mingle", "--without-gossip", "-l", "info"]
        super().__init__(args, log, env)
        self.node = node

    def start(self) -> NodeWorker:
        command = [*NETNS_EXEC, self.node.netns, sys.executable, "-m", "celery", "-A", "config"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*command, *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def advance_ids(self, what: str) -> set[str]:
        """Ids of the advance_book tasks this worker logged as ``received``/``succeeded``."""
        pattern = {
            "received": r"Task shadow\.advance_book\[([0-9a-f-]+)\] received",
            "succeeded": r"Task shadow\.advance_book\[([0-9a-f-]+)\] succeeded",
        }[what]
        return set(re.findall(pattern, self.text()))


def _revision(cluster: Cluster) -> int:
    rows = cluster.query(
        "SELECT coalesce(max(s.revision), 0) FROM signals_bookstate s "
        "JOIN signals_book b ON b.id = s.book_id WHERE b.name = 'live'"
    )
    return int(rows[0][0])


def _writer(watch: psycopg.Connection) -> str | None:
    """The address of the client whose transaction holds the live book's revision claim
    (the row lock of its write), if any."""
    row = watch.execute(
        "SELECT host(a.client_addr) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE l.relation = 'signals_bookstate'::regclass AND l.mode = 'RowExclusiveLock' "
        "AND l.granted"
    ).fetchone()
    return row[0] if row else None


def _quiet(cluster: Cluster) -> bool:
    """No message queued, none held by a worker (running, or waiting for its countdown)."""
    client = redis.Redis.from_url(cluster.redis_url())
    queued = sum(client.llen(queue) for queue in QUEUES.split(","))
    return queued == 0 and client.hlen("unacked") == 0


def _run(
    cluster: Cluster,
    tmp_path: Path,
    *,
    name: str,
    cut_at: str,
    heal_after: float,
    heal_when_done: bool = False,
    visibility: int,
) -> dict[str, object]:
    """Start a worker per node, send one sweep, cut the node running the book at
    ``cut_at`` (``run``: its start; ``write``: while its transaction holds the revision
    claim), heal it ``heal_after`` seconds later (or as soon as the book is advanced, with
    ``heal_when_done``), wait until all work is done, and compare the book with a clean
    replay. Returns what happened, for the assertions."""
    cluster.new_database(name)
    workers = {
        node.name: NodeWorker(node, cluster, tmp_path / f"{name}-{node.name}.log", visibility)
        for node in cluster.nodes.values()
    }
    try:
        for worker in workers.values():
            worker.start()
        for worker in workers.values():
            worker.wait_for("ready", timeout=60)
        from config.celery import app

        with app.connection_for_write(cluster.redis_url()) as conn:
            app.send_task("shadow.advance_live_books", connection=conn)

        by_address = {w.node.address: w for w in workers.values()}
        victim: NodeWorker | None = None
        watch = psycopg.connect(cluster.pg_url(), autocommit=True)
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            if cut_at == "run":
                running = [
                    w
                    for w in workers.values()
                    if "[SIGNAL-BUS] book=live configuration" in w.text()
                ]
                victim = running[0] if running else None
            else:
                address = _writer(watch)
                victim = by_address.get(address) if address else None
            if victim is None:
                time.sleep(0.01)
        watch.close()
        assert victim is not None, "no node started the book's run"
        victim.node.cut()
        cut = time.monotonic()
        revision_at_cut = _revision(cluster)
        assert revision_at_cut == 0, "the cut came after the run committed: make it longer"
        other = next(w for w in workers.values() if w is not victim)

        healed = False
        revision_before_heal = 0
        advanced_in: float | None = None
        deadline = cut + 120
        while time.monotonic() < deadline:
            if advanced_in is None and _revision(cluster) >= 1:
                advanced_in = time.monotonic() - cut
            due = time.monotonic() - cut >= heal_after
            if not healed and (due or (heal_when_done and _revision(cluster) >= 1)):
                revision_before_heal = _revision(cluster)
                victim.node.heal()
                healed = True
            if healed and _revision(cluster) >= 1 and _quiet(cluster):
                time.sleep(2)  # a late retry would show up in Redis now
                if _quiet(cluster):
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(
                f"work not done within 120 s of the cut\n--- cut node:\n{victim.text()[-3000:]}"
                f"\n--- other node:\n{other.text()[-3000:]}"
            )
        done_in = time.monotonic() - cut
        out = cluster.manage(name, "shell", "-c", COMPARE)
        line = next(line for line in out.splitlines() if line.startswith("compare "))
        _, signals, lost, duplicated, verdict = line.split()
        return {
            "equal": verdict == "EQUAL",
            "signals": int(signals),
            "lost": int(lost),
            "duplicated": int(duplicated),
            "victim": victim,
            "other": other,
            "revision_before_heal": revision_before_heal,
            "advanced_in": advanced_in,
            "done_in": done_in,
        }
    finally:
        for worker in workers.values():
            worker.node.heal()
            worker.stop()


@pytest.mark.reliability(
    fault="two worker nodes in network namespaces; the node writing the live book has its "
    "link cut inside its write transaction (holding the book's row lock)",
    expected="PostgreSQL drops the dead connection (the app's keepalives), the other node "
    "runs the redelivered message during the cut; rows equal a clean replay",
)
def test_a_node_cut_inside_its_write_its_work_completes_on_the_other_node(
    cluster, tmp_path, reliability
):
    """The cut node held the book's row lock: PostgreSQL drops its dead connection (the
    app's TCP keepalives and user timeout), which rolls its write back, and the broker
    gives its message to the other node after the visibility timeout (8 s here), all
    during the cut; when the cut node comes back, its late retry finds the book already
    advanced."""
    result = _run(
        cluster,
        tmp_path,
        name="cut_write",
        cut_at="write",
        heal_after=60,
        heal_when_done=True,
        visibility=8,
    )
    victim, other = result["victim"], result["other"]
    assert result["equal"], result
    assert result["signals"] > 100
    assert (result["lost"], result["duplicated"]) == (0, 0)
    assert result["revision_before_heal"] >= 1, "the other node advanced the book during the cut"
    assert victim.advance_ids("received") & other.advance_ids("succeeded"), (
        "the other node ran the cut node's message"
    )
    reliability.observed(
        f"the other node wrote the book {result['advanced_in']:.1f} s into the cut; "
        f"{result['signals']} signals, every row equal to a clean replay",
        lost=result["lost"],
        duplicated=result["duplicated"],
    )


@pytest.mark.reliability(
    fault="two worker nodes in network namespaces; the node running the live book has its "
    "link cut for 1.5 s at the start of the run",
    expected="the cut node finishes the run itself once its link is back; the other node "
    "never gets the message; rows equal a clean replay",
)
def test_a_node_cut_briefly_finishes_its_own_work_on_reconnection(cluster, tmp_path, reliability):
    """A cut shorter than every timeout: the node's connections survive it, it finishes
    the run itself when its link is back, and the other node never gets the message."""
    result = _run(cluster, tmp_path, name="cut_brief", cut_at="run", heal_after=1.5, visibility=60)
    victim, other = result["victim"], result["other"]
    assert result["equal"], result
    assert (result["lost"], result["duplicated"]) == (0, 0)
    assert result["revision_before_heal"] == 0
    assert victim.advance_ids("succeeded"), victim.text()[-3000:]
    assert not other.advance_ids("received"), "the message stayed with the cut node"
    reliability.observed(
        f"the cut node wrote the book {result['advanced_in']:.1f} s after the cut began; "
        f"{result['signals']} signals, every row equal to a clean replay",
        lost=result["lost"],
        duplicated=result["duplicated"],
    )
