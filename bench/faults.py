"""Benchmark: the long fault run — kill -9 the pipeline's processes under load, then count.

Starts, as a new user would on one machine, every piece by hand on 127.0.0.1 free ports: the
embedded broker (Tansu) and schema registry, `govpulse serve` (the store's owner: a sink,
the dashboard and ClickHouse's HTTP interface), two `govpulse streams` workers and one
extra `govpulse sink` (which reaches the store through serve's endpoint). Then it sends
`govpulse simulate --flat --rate RATE --duration DURATION` (the simulator's default defects:
5 % dirty records, duplicates, …) and meanwhile

- sends SIGKILL `--kills` times at random moments (5-90 % of the traffic), to a worker, the
  extra sink or serve (about 1 in 5 kills is serve's), and starts the victim again with the
  same command after a random 0.5-5 s pause; a victim still restarting from an earlier kill
  is killed once it serves again;
- stops the broker with SIGSTOP for `--broker-stop-s` seconds once (then SIGCONT).

After the traffic it waits until the pipeline drained (the workers' committed offsets at
raw.*'s ends, the sinks' at clean.*/dlq.*'s) and measures, through serve's ClickHouse
endpoint and the topics:

- lost: event ids on clean.<type> that no row of events_<type> holds (nor dead_letters as
  refused by ClickHouse);
- doubled: count() - uniqExact(event_id) of each events table;
- rollups: every materialized view fed by an events table, its rollup re-checked against
  the table bucket by bucket (minute, hour or day: count, sums, max);
- clean_doubles: clean records minus distinct raw positions on clean.<type> (records the
  stream processor wrote twice), and clean_id_repeats (one event id clean twice);
- `govpulse audit --json`: its exit code and report;
- per kill: victim, when, the pause, and seconds from the kill until the new process answered
  (up_s) and moved records again (resume_s).

Prints progress to stderr and one JSON object to stdout. Every process it started is ended
by its PID at the end, on Ctrl-C and on errors too. The seed makes the plan (moments,
victims, pauses, the simulator's traffic) repeatable, not the timing of a shared machine.

    .venv/bin/python -m bench.faults                               # 7 min, 20 kills
    .venv/bin/python -m bench.faults --duration 120 --kills 6 --seed 1
    .venv/bin/python -m bench.faults --workdir /tmp/faults --keep  # logs and store kept

GOVPULSE_* variables of the calling shell reach the processes (e.g. GOVPULSE_SINK_MAX_WAIT_MS,
GOVPULSE_KAFKA_SESSION_TIMEOUT_MS), except the addresses, ports, data directory and store,
which the run sets.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._fault_harness import (
    Pipeline,
    fault_report,
    measure,
    pipeline_env,
    random_plan,
    run_faults,
    stderr_log,
    wait_drained,
)
from bench._stack import interrupt_on_signals, positive
from bench.host import host_facts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=positive, default=1000, help="events/s (default 1000)")
    parser.add_argument(
        "--duration", type=positive, default=420, help="seconds of traffic (default 420)"
    )
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs sent (default 20)")
    parser.add_argument(
        "--broker-stop-s",
        type=float,
        default=10,
        help="seconds the broker is stopped (SIGSTOP) once; 0: never (default 10)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="plan and traffic seed (default: random, printed)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the run keeps data and logs (must be empty or absent; never deleted); "
        "default: a new temporary directory, deleted at the end unless --keep",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--drain-timeout",
        type=positive,
        default=600,
        help="seconds to wait for the pipeline to drain after the traffic (default 600)",
    )
    args = parser.parse_args(argv)
    if args.kills < 0 or args.broker_stop_s < 0:
        parser.error("--kills and --broker-stop-s cannot be negative")
    if args.workdir is not None and args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error(f"--workdir {args.workdir} is not empty: a fresh store is measured")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    return args


def run(args: argparse.Namespace, workdir: Path, log=stderr_log) -> dict[str, Any]:
    from govpulse.embedded.broker import EmbeddedBroker
    from govpulse.embedded.process import free_port
    from govpulse.embedded.registry.service import EmbeddedRegistry

    started = time.monotonic()
    plan = random_plan(args.seed, args.duration, args.kills, args.broker_stop_s)
    broker = registry = pipe = None
    try:
        broker = EmbeddedBroker("127.0.0.1", free_port(), workdir / "logs").start()
        registry = EmbeddedRegistry(
            "127.0.0.1", free_port(), workdir / "registry", workdir / "logs"
        ).start()
        env = pipeline_env(workdir, broker.bootstrap, registry.url)
        log(f"broker {broker.bootstrap} (pid {broker.process.pid}), registry {registry.url}")
        pipe = Pipeline(workdir, env, broker_pid=broker.process.pid, log=log)
        pipe.start()
        pipe.start_simulator(args.rate, args.duration, seed=args.seed)
        faults = run_faults(pipe, plan)
        log("traffic over; waiting for the pipeline to drain")
        drained_s = wait_drained(pipe, args.drain_timeout)
        log(f"drained in {drained_s} s" if drained_s is not None else "NOT drained; measuring")
        figures = measure(pipe)
        totals = figures["totals"]
        log(
            f"lost {totals['lost']}, doubled {totals['doubled']}, clean doubles "
            f"{totals['clean_doubles']}, rollups differing {totals['rollups_differing']} of "
            f"{totals['rollups_checked']}, audit exit {totals['audit_exit_code']}"
        )
        return {
            "bench": "faults",
            "config": {
                "rate": args.rate,
                "duration_s": args.duration,
                "kills": args.kills,
                "broker_stop_s": args.broker_stop_s,
                "seed": args.seed,
                "workdir": str(workdir),
            },
            "ok": totals["lost"] == totals["doubled"] == totals["rollups_differing"] == 0
            and totals["audit_exit_code"] == 0,
            **figures,
            "faults": fault_report(faults),
            "drained_s": drained_s,
            "restarts": {name: m.restarts for name, m in pipe.members.items()},
            "simulator": pipe.simulator_report(),
            "wall_s": round(time.monotonic() - started, 1),
        }
    finally:
        if pipe is not None:
            pipe.close()
        if registry is not None:
            registry.stop()
        if broker is not None:
            broker.stop()  # pipe.close() continued it if it was stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host = host_facts()  # before the run's own load
    interrupt_on_signals()
    if args.workdir is not None:
        workdir, remove = args.workdir.resolve(), False
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir, remove = Path(tempfile.mkdtemp(prefix="govpulse-faults-")), not args.keep
    stderr_log(f"seed {args.seed}; working in {workdir}")
    try:
        result = run(args, workdir)
    except KeyboardInterrupt:
        stderr_log("interrupted: every process started was stopped")
        return 130
    finally:
        if remove:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.workdir is None:
            stderr_log(f"kept {workdir}")
    print(json.dumps({**result, "host": host}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
