"""Drive a running govpulse pipeline through faults, then measure what it kept.

Shared by `bench/faults.py` (the long run) and `tests/pipeline/test_kill_loop.py` (a bounded
one): no pytest here, and nothing of either caller.

- `Pipeline`: `govpulse serve`, one extra `govpulse sink`, N `govpulse streams` workers and
  `govpulse simulate`, each a child process on 127.0.0.1 ports of its own, stopped by its PID.
  A member killed with SIGKILL is started again, with the same command and ports, after a
  pause; one that exits on its own is counted as an unplanned exit and started again too.
- `run_faults`: carries out a `Plan` (kill moments, victims, pauses; one SIGSTOP of the
  broker) while the simulator runs, and times each restart: kill → the new process answers
  (`up_s`) → it moved records again (`resume_s`: consumed for a worker, inserted for a sink;
  for serve also its ClickHouse HTTP endpoint answering).
- `wait_drained`: the stream workers' and the sinks' committed offsets at the true ends of
  raw.* and of clean.*/dlq.*.
- `measure`: lost (clean event ids never stored), doubled rows per events table, every
  rollup fed by an events table (and dead_letters_minute) against that table bucket by
  bucket, clean records written twice by the stream processor, and `govpulse audit --json`.
  Read through serve's ClickHouse HTTP endpoint, so serve must still run.

A killed member is restarted after its pause whatever else is down, as a supervisor would:
`govpulse sink` started while serve is down waits for serve (govpulse-serve.json).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from govpulse.embedded.process import answers, free_port
from govpulse.monitoring.scrape import sum_samples
from govpulse.offsets import committed_at_ends
from govpulse.schemas import catalog

TYPES = catalog.EVENT_TYPES
GOVPULSE = [sys.executable, "-m", "govpulse"]
PROGRESS = {
    "serve": "govpulse_sink_rows_inserted_total",
    "sink": "govpulse_sink_rows_inserted_total",
    "streams": "govpulse_streams_consumed_total",
}
SINK_GROUP = "govpulse-sink"  # sinks/sink.py GROUP_ID
SUBSTITUTE_AFTER_S = 10.0  # a planned victim still restarting this long: kill another
Log = Callable[[str], None]


def stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _die_with_parent() -> None:  # in the child, between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Proc:
    """One child process: its own process group (a Ctrl-C reaches only the driver, which
    stops the children itself), killed by the kernel if the driver dies, output to a log."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, out: Path | None = None):
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as err, open(out or log, "ab") as stdout:
            self.popen = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=err,
                process_group=0,
                preexec_fn=_die_with_parent,
            )
        self.pid = self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait()

    def stop(self, grace: float) -> int | None:
        """SIGTERM, SIGKILL after `grace` seconds; the exit code."""
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.popen.returncode


def scrape(port: int, name: str) -> float | None:
    """Sum of metric `name` at 127.0.0.1:port/metrics; None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return sum_samples(text, name)


@dataclass
class Member:
    """One supervised pipeline process: `serve`, `sink` or `streams`."""

    name: str
    kind: str
    args: list[str]
    env: dict[str, str]
    log: Path
    port: int  # its /metrics
    proc: Proc | None = None
    started: float = 0.0  # monotonic, of the current process
    serving: bool = False  # the current process has moved records
    restarts: int = 0

    def start(self) -> None:
        self.proc = Proc([*GOVPULSE, *self.args], self.env, self.log)
        self.started, self.serving = time.monotonic(), False

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def progress(self) -> float | None:
        return scrape(self.port, PROGRESS[self.kind])


@dataclass
class Kill:
    """One SIGKILL and the restart after it; seconds from the run's start or from the kill."""

    victim: str
    planned_s: float
    pause_s: float
    at_s: float | None = None  # when it was sent (later than planned while the victim
    # was still restarting from an earlier kill)
    pid: int | None = None
    restarted_s: float | None = None  # kill → new process started (the pause)
    up_s: float | None = None  # kill → new process answers (/metrics; serve: also /ping)
    resume_s: float | None = None  # kill → new process moved records again
    note: str = ""


@dataclass
class Plan:
    kills: list[Kill]
    broker_stop_at_s: float | None = None
    broker_stop_s: float = 0.0


def random_plan(
    seed: int,
    duration: float,
    kills: int,
    broker_stop_s: float,
    workers: int = 2,
    serve_share: float = 0.2,
    pause: tuple[float, float] = (0.5, 5.0),
) -> Plan:
    """`kills` SIGKILLs at random moments of the traffic (5-90 % of it), about `serve_share`
    of them on serve, the rest on the workers and the extra sink; a random pause before
    each restart; the broker stopped once, somewhere in 20-80 % of the traffic."""
    rng = random.Random(seed)
    on_serve = round(kills * serve_share)
    others = [f"worker{i}" for i in range(workers)] + ["sink"]
    victims = ["serve"] * on_serve + [rng.choice(others) for _ in range(kills - on_serve)]
    rng.shuffle(victims)
    moments = sorted(rng.uniform(0.05, 0.9) * duration for _ in victims)
    plan = [
        Kill(victim, round(at, 1), round(rng.uniform(*pause), 1))
        for victim, at in zip(victims, moments, strict=True)
    ]
    stop_at = round(rng.uniform(0.2, 0.8) * duration, 1) if broker_stop_s > 0 else None
    return Plan(plan, stop_at, broker_stop_s)


OWN_SETTINGS = (  # set by the run for its own stack, whatever the calling shell says
    "GOVPULSE_CLICKHOUSE_DSN",
    "GOVPULSE_DASHBOARD_CLICKHOUSE_DSN",
    "GOVPULSE_METRICS_PORT",
    "GOVPULSE_METRICS_PORT_BASE",
)


def pipeline_env(workdir: Path, bootstrap: str, registry_url: str) -> dict[str, str]:
    """The calling shell's environment (its GOVPULSE_* tuning included) pointed at this run's
    broker, registry, data directory (`workdir/data`) and a fresh pseudonym key, less the
    settings `Pipeline` sets per member (store, ports)."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "pseudonym.key"
    key.write_bytes(os.urandom(48))
    key.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k not in OWN_SETTINGS}
    env.update(
        GOVPULSE_DATA_DIR=str(workdir / "data"),
        GOVPULSE_BOOTSTRAP_SERVERS=bootstrap,
        GOVPULSE_REGISTRY_URL=registry_url,
        GOVPULSE_PSEUDONYM_KEY_FILE=str(key),
    )
    return env


def _answering(member: Member) -> Callable[[], bool]:
    return lambda: member.progress() is not None


class Pipeline:
    """serve, one extra sink and `workers` stream workers on an existing broker and registry.

    `env`: the GOVPULSE_* environment pointing at them (bootstrap, registry, data dir, key;
    `pipeline_env` builds it); each member gets its own metrics port, serve its dashboard and
    ClickHouse HTTP ports. `extra_sink=False` leaves the extra sink out (serve's own sink is
    the only one, as under `govpulse up`).
    """

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        broker_pid: int | None = None,
        workers: int = 2,
        log: Log = stderr_log,
        extra_sink: bool = True,
    ) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.log = log
        self.broker_pid = broker_pid
        self.http_port = free_port()
        self.env = {
            **env,
            "GOVPULSE_BIND_HOST": "127.0.0.1",
            "GOVPULSE_CLICKHOUSE_HTTP_PORT": str(self.http_port),
            "GOVPULSE_DASHBOARD_PORT": str(free_port()),
        }
        self.bootstrap = self.env["GOVPULSE_BOOTSTRAP_SERVERS"]
        self.registry_url = self.env["GOVPULSE_REGISTRY_URL"]
        self.clickhouse_url = f"http://127.0.0.1:{self.http_port}"
        specs = [("serve", "serve", ["serve"])]
        specs += [("sink", "sink", ["sink"])] if extra_sink else []
        specs += [(f"worker{i}", "streams", ["streams"]) for i in range(workers)]
        self.members: dict[str, Member] = {}
        for name, kind, args in specs:
            port = free_port()
            self.members[name] = Member(
                name,
                kind,
                args,
                {**self.env, "GOVPULSE_METRICS_PORT": str(port)},
                self.logs / f"{name}.log",
                port,
            )
        self.simulator: Proc | None = None
        self.simulator_port = free_port()
        self.simulator_out = self.logs / "simulate.json"
        self.broker_stopped = False
        self.t0 = time.monotonic()

    # -- start and stop --------------------------------------------------------------------
    def serve_answers(self) -> bool:
        return answers(f"{self.clickhouse_url}/ping")

    def start(self, timeout: float = 180.0) -> None:
        """serve first (it owns the store and migrates it), then the sink and the workers."""
        serve = self.members["serve"]
        serve.start()
        self._wait(lambda: self.serve_answers(), timeout, "serve's ClickHouse HTTP endpoint")
        for member in self.members.values():
            if member is not serve:
                member.start()
        for member in self.members.values():
            self._wait(_answering(member), timeout, f"{member.name}'s /metrics")
        pids = ", ".join(f"{m.name} pid {m.proc.pid}" for m in self._procs() if m.proc)
        self.log(f"pipeline up: {pids}")

    def _procs(self) -> Iterable[Member]:
        return (m for m in self.members.values() if m.proc is not None)

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            for member in self._procs():
                if not member.running():
                    raise RuntimeError(f"{member.name} exited during start-up; see {member.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.25)

    def start_simulator(self, rate: float, duration: float, seed: int | None = None) -> None:
        args = ["simulate", "--flat", "--json", "--rate", str(rate), "--duration", str(duration)]
        if seed is not None:
            args += ["--seed", str(seed)]
        env = {**self.env, "GOVPULSE_METRICS_PORT": str(self.simulator_port)}
        self.simulator = Proc(
            [*GOVPULSE, *args], env, self.logs / "simulate.log", self.simulator_out
        )
        self.t0 = time.monotonic()
        self.log(f"simulator pid {self.simulator.pid}: {rate:g} events/s for {duration:g} s")

    def simulator_report(self) -> dict[str, Any]:
        try:
            lines = self.simulator_out.read_text().strip().splitlines()
            report = json.loads(lines[-1]) if lines else {}
        except (OSError, ValueError):
            report = {}
        if self.simulator is not None:
            report["exit_code"] = self.simulator.popen.returncode
        return report

    def elapsed(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    def stop_broker(self) -> None:
        if self.broker_pid is not None and not self.broker_stopped:
            os.kill(self.broker_pid, signal.SIGSTOP)
            self.broker_stopped = True

    def continue_broker(self) -> None:
        if self.broker_pid is not None and self.broker_stopped:
            os.kill(self.broker_pid, signal.SIGCONT)
            self.broker_stopped = False

    def close(self) -> None:
        """End every process this pipeline started, by PID: SIGTERM all, SIGKILL stragglers."""
        with contextlib.suppress(ProcessLookupError):
            self.continue_broker()
        procs = [m.proc for m in self._procs()] + ([self.simulator] if self.simulator else [])
        for proc in procs:
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + 40
        for proc in procs:
            if proc is None:
                continue
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


# -- the fault loop --------------------------------------------------------------------------
@dataclass
class _Pending:
    """A member started (again) and not yet moving records, or waiting to be restarted."""

    member: Member
    kill: Kill | None  # None: the first start, or an exit nobody asked for
    since: float  # monotonic: the kill, the exit, or the first start
    restart_at: float | None  # monotonic; None once (re)started
    up: bool = False


@dataclass
class FaultLog:
    kills: list[Kill] = field(default_factory=list)
    skipped: list[Kill] = field(default_factory=list)  # due after the traffic ended
    unplanned_exits: list[dict[str, Any]] = field(default_factory=list)
    broker_stop: dict[str, Any] | None = None
    traffic_s: float | None = None  # the simulator's run, as this driver saw it


class _FaultLoop:
    """One pass every 0.2 s: the broker, exits, restarts, resumes, kills, a status line."""

    def __init__(self, pipe: Pipeline, plan: Plan, resume_timeout: float, every: float):
        self.pipe, self.plan, self.log = pipe, plan, pipe.log
        self.resume_timeout, self.every, self.next_status = resume_timeout, every, every
        self.result = FaultLog()
        self.todo = sorted(plan.kills, key=lambda k: k.planned_s)
        # first starts: a member serves once it moved records; kills wait for that
        self.pending = [_Pending(m, None, m.started, None) for m in pipe.members.values()]
        self.stop_at: float | None = plan.broker_stop_at_s
        self.cont_at: float | None = None

    def say(self, text: str) -> None:
        self.log(f"[{self.pipe.elapsed():6.1f}s] {text}")

    def run(self) -> FaultLog:
        assert self.pipe.simulator is not None
        while True:
            traffic = self.pipe.simulator.running()
            if not traffic and self.result.traffic_s is None:
                self.result.traffic_s = self.pipe.elapsed()
                self.say(f"simulator exited ({self.pipe.simulator.popen.returncode})")
            self.broker()
            self.exits()
            self.restarts()
            self.resumes()
            self.kills(traffic)
            self.status()
            if not traffic and not self.todo and not self.pending and self.cont_at is None:
                return self.result
            time.sleep(0.2)

    def broker(self) -> None:
        """Stopped once at its moment, continued `broker_stop_s` later."""
        pipe, now = self.pipe, time.monotonic()
        if self.stop_at is not None and pipe.elapsed() >= self.stop_at and pipe.broker_pid:
            pipe.stop_broker()
            self.cont_at, self.stop_at = now + self.plan.broker_stop_s, None
            self.result.broker_stop = {"at_s": pipe.elapsed(), "seconds": self.plan.broker_stop_s}
            self.say(f"SIGSTOP broker (pid {pipe.broker_pid}) for {self.plan.broker_stop_s:g} s")
        if self.cont_at is not None and now >= self.cont_at:
            pipe.continue_broker()
            self.cont_at = None
            self.say("SIGCONT broker")

    def exits(self) -> None:
        """A member that exited though nobody killed it: counted, started again in 1 s."""
        for member in self.pipe.members.values():
            waiting = any(p.member is member and p.restart_at is not None for p in self.pending)
            if member.proc is None or member.running() or waiting:
                continue
            code = member.proc.popen.returncode
            member.serving = False
            self.result.unplanned_exits.append(
                {"member": member.name, "at_s": self.pipe.elapsed(), "exit_code": code}
            )
            self.say(f"{member.name} exited by itself (code {code}); restarting it")
            now = time.monotonic()
            self.pending = [p for p in self.pending if p.member is not member]
            self.pending.append(_Pending(member, None, now, now + 1.0))

    def restarts(self) -> None:
        """Due restarts."""
        for item in self.pending:
            if item.restart_at is None or time.monotonic() < item.restart_at:
                continue
            item.member.start()
            item.member.restarts += 1
            item.restart_at = None
            if item.kill is not None:
                item.kill.restarted_s = round(time.monotonic() - item.since, 2)
            assert item.member.proc is not None
            self.say(f"started {item.member.name} again (pid {item.member.proc.pid})")

    def resumes(self) -> None:
        """(Re)started members: answering (up_s), then moving records (resume_s)."""
        for item in list(self.pending):
            if item.restart_at is not None:
                continue
            member, since = item.member, time.monotonic() - item.since
            moved = member.progress()
            up = moved is not None and (member.kind != "serve" or self.pipe.serve_answers())
            if up and not item.up:
                item.up = True
                if item.kill is not None:
                    item.kill.up_s = round(since, 2)
            if up and moved:
                member.serving = True
                self.pending.remove(item)
                if item.kill is not None:
                    item.kill.resume_s = round(since, 2)
                    self.say(f"{member.name} serving again {since:.1f} s after its kill")
            elif since > self.resume_timeout:
                self.pending.remove(item)
                if item.kill is not None:
                    item.kill.note = f"moved no records within {self.resume_timeout:.0f} s"
                self.say(f"{member.name} moved no records {since:.0f} s after its (re)start")

    def kills(self, traffic: bool) -> None:
        """Due kills, each on a victim that serves: the planned one, or once it has been
        restarting for `SUBSTITUTE_AFTER_S` past the kill's moment another of its kind (a
        worker for a worker), else any (the kill waits while none serves); after the
        traffic none: a restart would have nothing to move, no resume to measure."""
        while self.todo and self.pipe.elapsed() >= self.todo[0].planned_s:
            kill = self.todo[0]
            if not traffic:
                self.result.skipped.append(self.todo.pop(0))
                kill.note = "due after the traffic ended"
                self.say(f"kill of {kill.victim} skipped: {kill.note}")
                continue
            late = self.pipe.elapsed() - kill.planned_s > SUBSTITUTE_AFTER_S
            member = self._serving_victim(kill.victim, any_member=late)
            if member is None:
                return
            if member.name != kill.victim:
                kill.note = f"instead of {kill.victim}, still restarting"
                kill.victim = member.name
            self.todo.pop(0)
            kill.pid, kill.at_s = member.proc.pid, self.pipe.elapsed()
            member.proc.kill()
            member.serving = False
            self.result.kills.append(kill)
            now = time.monotonic()
            self.pending = [p for p in self.pending if p.member is not member]
            self.pending.append(_Pending(member, kill, now, now + kill.pause_s))
            self.say(f"SIGKILL {kill.victim} (pid {kill.pid}); restart in {kill.pause_s:g} s")

    def _serving_victim(self, planned: str, any_member: bool) -> Member | None:
        members = self.pipe.members
        kind = members[planned].kind
        order = [planned]
        if any_member:
            order += [n for n, m in members.items() if m.kind == kind and n != planned]
            order += [n for n in members if n not in order]
        for name in order:
            member = members[name]
            if member.serving and member.proc is not None and member.running():
                return member
        return None

    def status(self) -> None:
        if self.pipe.elapsed() < self.next_status:
            return
        self.next_status += self.every
        sent = scrape(self.pipe.simulator_port, "govpulse_producer_delivered_total")
        states = " ".join(
            f"{m.name}={'serving' if m.serving else 'up' if m.running() else 'down'}"
            for m in self.pipe.members.values()
        )
        self.say(
            f"delivered {'-' if sent is None else f'{sent:,.0f}'}; {states}; "
            f"kills {len(self.result.kills)}/{len(self.plan.kills)}"
        )


def run_faults(
    pipe: Pipeline, plan: Plan, resume_timeout: float = 180.0, status_every: float = 10.0
) -> FaultLog:
    """Carry out `plan` while the simulator runs; return once it exited and every restarted
    process moved records again (or `resume_timeout` passed for it)."""
    return _FaultLoop(pipe, plan, resume_timeout, status_every).run()


# -- drained --------------------------------------------------------------------------------
def drained(bootstrap: str, streams_app_id: str = "govpulse-streams") -> bool:
    """Every raw record routed (the workers' raw group committed at raw.*'s true ends) and
    every outcome stored (the sinks' group at clean.*/dlq.*'s)."""
    raw = [catalog.raw_topic(t) for t in TYPES]
    outcomes = [catalog.topic(stage, t) for stage in ("clean", "dlq") for t in TYPES]
    return committed_at_ends(bootstrap, f"{streams_app_id}-raw", raw) and committed_at_ends(
        bootstrap, SINK_GROUP, outcomes
    )


def wait_drained(pipe: Pipeline, timeout: float) -> float | None:
    """Seconds until drained (twice in a row, 1 s apart), None after `timeout`."""
    started = time.monotonic()
    app_id = pipe.env.get("GOVPULSE_STREAMS_APP_ID", "govpulse-streams")
    streak = 0
    while time.monotonic() - started < timeout:
        try:
            streak = streak + 1 if drained(pipe.bootstrap, app_id) else 0
        except Exception as error:  # a broker still recovering: ask again
            pipe.log(f"drain check: {error}")
            streak = 0
        if streak >= 2:
            return round(time.monotonic() - started, 1)
        time.sleep(1.0)
    return None


# -- measuring --------------------------------------------------------------------------------
def read_clean(bootstrap: str, registry_url: str, timeout: float = 300.0) -> dict[str, dict]:
    """Per type: clean records, their distinct raw positions and distinct event ids (keys)."""
    from confluent_kafka import Consumer

    from govpulse.offsets import read_ranges, topic_ends
    from govpulse.registry import registry_client
    from govpulse.schemas.lineage import CleanLineage
    from govpulse.schemas.writer_schemas import WriterSchemas

    schemas = WriterSchemas(registry_client(registry_url))
    readers = {catalog.clean_topic(t): (t, CleanLineage(t, schemas)) for t in TYPES}
    seen: dict[str, dict[str, Any]] = {
        t: {"records": 0, "positions": set(), "ids": set(), "unreadable": 0} for t in TYPES
    }
    ends = topic_ends(bootstrap, list(readers))
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "govpulse-faults-reader",
         "enable.auto.commit": False, "log_level": 0}
    )  # fmt: skip
    try:
        for message in read_ranges(consumer, ends, timeout):
            event_type, reader = readers[message.topic() or ""]
            stats = seen[event_type]
            stats["records"] += 1
            key = message.key()
            stats["ids"].add(key.decode().lower() if isinstance(key, bytes) else key)
            try:
                stats["positions"].add(reader(message.value() or b"")[:2])
            except Exception:
                stats["unreadable"] += 1
    finally:
        consumer.close()
    return seen


def _split_top(text: str) -> list[str]:
    """`a, f(b, c), 'x,y'` → ['a', 'f(b, c)', "'x,y'"]: commas outside brackets and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == "'" and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


@dataclass
class Feeder:
    """A materialized view from events_<type> into a rollup, as far as it can be re-checked:
    its time bucket, its constant columns (the rollup's rows of this feed) and its simple
    aggregates (count/sum/max/min: the rollup column merges them by sum or max/min)."""

    view: str
    source: str
    target: str
    bucket: tuple[str, str]  # (expression, rollup column)
    constants: dict[str, str]
    aggregates: list[tuple[str, str, str]]  # (expression, rollup column, rollup merge)

    @property
    def counts(self) -> str | None:
        """The rollup column holding count(): the events counted."""
        return next((c for e, c, _ in self.aggregates if e == "count()"), None)


_MERGE = {"count": "sum", "sum": "sum", "max": "max", "min": "min"}


def feeders(client: Any) -> list[Feeder]:
    """Every materialized view reading an events_<type> table (or dead_letters), from
    system.tables."""
    sources = {f"events_{t}" for t in TYPES} | {"dead_letters"}
    rows = client.query(
        "SELECT name, as_select, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND engine = 'MaterializedView' ORDER BY name"
    ).result_rows
    found = []
    for name, as_select, create in rows:
        select = re.match(r"\s*SELECT (.*?) FROM (?:\w+\.)?(\w+)(?:\s|$)", as_select, re.S)
        target = re.search(r"\bTO (?:`?\w+`?\.)?`?(\w+)`?", create)
        if not select or not target or select[2] not in sources:
            continue
        items = []
        for item in _split_top(select[1]):
            named = re.fullmatch(r"(.*) AS `?(\w+)`?", item, re.S)
            items.append((named[1], named[2]) if named else (item, item))
        constants = {alias: expr for expr, alias in items if re.fullmatch(r"'[^']*'", expr)}
        aggregates = [
            (expr, alias, _MERGE[head[1]])
            for expr, alias in items
            if (head := re.match(r"(count|sum|max|min)\(", expr))
        ]
        found.append(Feeder(name, select[2], target[1], items[0], constants, aggregates))
    return found


def rollup_differences(client: Any) -> tuple[int, dict[str, dict[str, dict[str, Any]]]]:
    """(rollups checked, type → rollup → difference): each rollup's rows of one events table
    against that table re-aggregated, per bucket of the rollup (minute, hour or day); only
    the pairs that differ are returned.

    Compared: count() and every sum/min/max the view writes, except those of `inserted_at`
    (when the sink wrote): an insert retried after a crash may fill a rollup on its second
    attempt while the events table kept the first one's rows, a later time but the same
    events. Those differences are listed apart (`inserted_at_buckets`), not as a mismatch.
    """
    checked, found = 0, dict[str, dict[str, dict[str, Any]]]()
    for feed in feeders(client):
        bucket_expr, bucket_col = feed.bucket
        expected = client.query(
            f"SELECT {bucket_expr} AS b, {', '.join(e for e, _, _ in feed.aggregates) or '1'} "
            f"FROM {feed.source} GROUP BY b"
        ).result_rows
        where = " AND ".join(f"{col} = {expr}" for col, expr in feed.constants.items()) or "1"
        merged = ", ".join(f"{merge}({col})" for _, col, merge in feed.aggregates) or "1"
        actual = client.query(
            f"SELECT {bucket_col} AS b, {merged} FROM {feed.target} WHERE {where} GROUP BY b"
        ).result_rows
        checked += 1
        want = {row[0]: tuple(row[1:]) for row in expected}
        have = {row[0]: tuple(row[1:]) for row in actual}
        columns = [c for _, c, _ in feed.aggregates]
        timing = {i for i, (e, _, _) in enumerate(feed.aggregates) if "inserted_at" in e}
        differing: dict[str, int] = {}
        first, real, timing_only = None, 0, 0
        for bucket in sorted(want.keys() | have.keys()):
            a, b = want.get(bucket), have.get(bucket)
            if a == b:
                continue
            names = (
                [columns[i] for i in range(len(columns)) if a[i] != b[i]]
                if a is not None and b is not None
                else ["(bucket missing)"]
            )
            if a is not None and b is not None and all(columns.index(n) in timing for n in names):
                timing_only += 1
                continue
            for name in names:
                differing[name] = differing.get(name, 0) + 1
            real += 1
            first = first or str(bucket)
        if not differing and not timing_only:
            continue
        at = columns.index(feed.counts) if feed.counts else None
        event_type = feed.source.removeprefix("events_")
        found.setdefault(event_type, {})[feed.target] = {
            "buckets": len(want.keys() | have.keys()),
            "buckets_differing": real,
            "columns_differing": differing,
            "inserted_at_buckets": timing_only,
            "events": None if at is None else sum(v[at] for v in want.values()),
            "counted": None if at is None else sum(v[at] for v in have.values()),
            "first": first,
        }
    return checked, found


def mismatches(rollups: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rollups of `rollup_differences` (one type's) that differ beyond `inserted_at`."""
    return {name: diff for name, diff in rollups.items() if diff["columns_differing"]}


def stored(client: Any) -> dict[str, dict[str, Any]]:
    """Per events table: rows, distinct event ids (and the ids), ids refused into dead_letters."""
    from govpulse.sinks.columns import table_for

    result = {}
    for event_type in TYPES:
        table = table_for(event_type)
        rows, ids = client.query(f"SELECT count(), uniqExact(event_id) FROM {table}").result_rows[0]
        id_set = {
            r[0]
            for r in client.query(f"SELECT DISTINCT toString(event_id) FROM {table}").result_rows
        }
        refused = {
            r[0]
            for r in client.query(
                "SELECT DISTINCT lower(ifNull(event_id, '')) FROM dead_letters "
                "WHERE event_type = {t:String} AND reason = 'store_rejected'",
                parameters={"t": event_type},
            ).result_rows
        }
        result[event_type] = {"rows": rows, "ids": ids, "id_set": id_set, "refused": refused}
    return result


def run_audit(env: dict[str, str], wait: float = 60.0) -> dict[str, Any]:
    """`govpulse audit --json`: its exit code, seconds and JSON, less the raw offset ranges
    and the rollups it found equal (counted in `rollups_equal`)."""
    started = time.monotonic()
    run = subprocess.run(
        [*GOVPULSE, "audit", "--json", "--wait", str(wait)],
        env=env,
        capture_output=True,
        text=True,
        timeout=wait + 600,
    )
    try:
        report = json.loads(run.stdout) if run.stdout.strip() else {}
    except ValueError:
        report = {"unparsed_stdout": run.stdout[-2000:]}
    for figures in report.get("types", {}).values():
        figures.pop("ranges", None)
        if isinstance(figures.get("rollups"), list):  # the audit's own rollup check: only
            equal = [r for r in figures["rollups"] if not r.get("differing")]  # what differs
            figures["rollups"] = [r for r in figures["rollups"] if r.get("differing")]
            figures["rollups_equal"] = len(equal)
    return {
        "exit_code": run.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "json": report,
        "stderr_tail": run.stderr.strip().splitlines()[-5:] if run.returncode else [],
    }


def measure(pipe: Pipeline, audit_wait: float = 30.0) -> dict[str, Any]:
    """Figures per type, rollup differences, totals and `govpulse audit` (serve must be up)."""
    from govpulse.clickhouse import make_client
    from govpulse.offsets import topic_ends

    clean = read_clean(pipe.bootstrap, pipe.registry_url)
    client = make_client(pipe.clickhouse_url)
    try:
        store = stored(client)
        checked, rollups = rollup_differences(client)
    finally:
        client.close()
    raw = topic_ends(pipe.bootstrap, [catalog.raw_topic(t) for t in TYPES])
    types: dict[str, dict[str, Any]] = {}
    for event_type in TYPES:
        seen, kept = clean[event_type], store[event_type]
        topic = catalog.raw_topic(event_type)
        types[event_type] = {
            "raw_records": sum(end - low for (t, _), (low, end) in raw.items() if t == topic),
            "clean_records": seen["records"],
            "clean_positions": len(seen["positions"]),
            "clean_ids": len(seen["ids"]),
            # the stream processor wrote one raw record's clean outcome more than once
            "clean_doubles": seen["records"] - len(seen["positions"]) - seen["unreadable"],
            # one event id clean from two raw positions (its dedup let a duplicate through)
            "clean_id_repeats": len(seen["positions"]) - len(seen["ids"]),
            "clean_unreadable": seen["unreadable"],
            "stored_rows": kept["rows"],
            "stored_ids": kept["ids"],
            "refused": len(kept["refused"] & seen["ids"]),
            "lost": len(seen["ids"] - kept["id_set"] - kept["refused"]),
            "stored_not_clean": len(kept["id_set"] - seen["ids"]),
            "doubled": kept["rows"] - kept["ids"],
            "rollups_differing": mismatches(rollups.get(event_type, {})),
            "rollups_inserted_at_only": {
                name: diff["inserted_at_buckets"]
                for name, diff in rollups.get(event_type, {}).items()
                if not diff["columns_differing"]
            },
        }
    if "dead_letters" in rollups:
        types["dead_letters"] = {"rollups_differing": mismatches(rollups["dead_letters"])}
    audit = run_audit(pipe.env, audit_wait)
    total = {
        name: sum(types[t][name] for t in TYPES)
        for name in ("lost", "doubled", "clean_doubles", "clean_id_repeats", "stored_not_clean")
    }
    total["rollups_checked"] = checked
    total["rollups_differing"] = sum(len(t["rollups_differing"]) for t in types.values())
    total["audit_exit_code"] = audit["exit_code"]
    return {"totals": total, "types": types, "audit": audit}


def fault_report(log: FaultLog) -> dict[str, Any]:
    def kill(k: Kill) -> dict[str, Any]:
        return {key: value for key, value in asdict(k).items() if value not in ("", None)}

    resumes = sorted(k.resume_s for k in log.kills if k.resume_s is not None)
    by_victim: dict[str, list[float]] = {}
    for k in log.kills:
        if k.resume_s is not None:
            by_victim.setdefault(k.victim.rstrip("0123456789"), []).append(k.resume_s)
    return {
        "kills": [kill(k) for k in log.kills],
        "kills_skipped": [kill(k) for k in log.skipped],
        "resume_s": {
            "max": resumes[-1] if resumes else None,
            "median": resumes[len(resumes) // 2] if resumes else None,
            "by_kind_max": {kind: max(v) for kind, v in sorted(by_victim.items())},
            "not_resumed": sum(1 for k in log.kills if k.resume_s is None),
        },
        "unplanned_exits": log.unplanned_exits,
        "broker_stop": log.broker_stop,
        "traffic_s": log.traffic_s,
    }
