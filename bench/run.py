"""Benchmark this runtime against AWS's ``awslambdaric``, side by side, in one command.

    python3 bench/run.py            # full run, 2-3 minutes
    python3 bench/run.py --quick    # under a minute, fewer repeats

The first run creates ``bench/.venv`` from ``bench/requirements.txt`` and re-executes
itself there, so both runtimes run on the same interpreter with the same libraries.
Results go to ``bench/results/`` (``results.md``, ``chart.png``, ``results.json``).
See ``bench/README.md`` for what each figure means.

Every comparison alternates the two runtimes (ABBA order, so neither always runs first
on a machine that warms up or gets busier) and reports medians, and the ratio of each
pair of runs, because a shared two-core machine is noisy and a single run proves little.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import venv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = BENCH / ".venv"
WORK = BENCH / "work"
RESULTS = BENCH / "results"
HANDLERS = BENCH / "handlers"
REQUIREMENTS = BENCH / "requirements.txt"

OURS = "ours"
AWS = "awslambdaric"

SIZES = {"noop": 0, "echo-100KB": 100 * 1024, "echo-5MB": 5 * 1024 * 1024}
HANDLER_OF = {"noop": "noop", "echo-100KB": "echo", "echo-5MB": "echo"}


# --- the bench's own environment ------------------------------------------------------------


def ensure_venv() -> None:
    """Re-run inside ``bench/.venv``, creating or refreshing it first when needed.

    The bench installs ``awslambdaric`` and matplotlib in a venv of its own so that neither
    ever becomes a dependency of the project, and so that the runtime's dependencies are
    the versions a fresh install would get.
    """
    python = VENV / "bin" / "python"
    stamp = VENV / ".requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        print(f"setting up {VENV.relative_to(REPO)} from {REQUIREMENTS.relative_to(REPO)} ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            + ["-r", str(REQUIREMENTS)],
            check=True,
        )
        stamp.write_text(wanted)
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


# --- the stand-in Runtime API ---------------------------------------------------------------


class StandIn:
    """Drives ``fake_api.py`` in its own process over a line-oriented JSON pipe."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "fake_api.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.out_fd = self.proc.stdout.fileno()
        self.buf = b""
        self.port = int(self._read(10.0)["port"])
        self.address = f"127.0.0.1:{self.port}"

    def _read(self, timeout: float) -> dict[str, Any]:
        give_up = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = give_up - time.monotonic()
            if left <= 0 or not select.select([self.out_fd], [], [], left)[0]:
                raise TimeoutError("the stand-in Runtime API did not answer in time")
            chunk = os.read(self.out_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("the stand-in Runtime API exited")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def _say(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def arm(self, events: int, size: int, crash_at: Sequence[int] = (), tag: str = "t") -> None:
        self._say({"cmd": "arm", "events": events, "size": size, "crash_at": list(crash_at), "tag": tag})
        assert self._read(10.0).get("armed")

    def wait_done(self, timeout: float) -> dict[str, Any]:
        return self._read(timeout)

    def reset(self) -> None:
        self._say({"cmd": "reset"})
        assert self._read(10.0).get("reset")

    def close(self) -> None:
        try:
            self._say({"cmd": "quit"})
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# --- the runtimes under test ----------------------------------------------------------------


@dataclass
class Runtime:
    """How to start one runtime: a command line and what it adds to the environment."""

    name: str
    argv: list[str]
    extra_env: dict[str, str] = field(default_factory=dict)
    needs_module_arg: bool = False  # awslambdaric takes ``module.function`` as its argument


def our_runtime(root: Path, name: str = OURS, extra_env: dict[str, str] | None = None) -> Runtime:
    """This project through its real entry point, ``bin/bootstrap`` (a /bin/sh exec)."""
    env = {"LAMBDA_SUPERVISOR_PYTHON": sys.executable}
    env.update(extra_env or {})
    return Runtime(name, [str(root / "bin" / "bootstrap")], env)


def aws_runtime() -> Runtime:
    """``python -m awslambdaric module.function``, as AWS's container images start it."""
    return Runtime(AWS, [sys.executable, "-m", "awslambdaric"], needs_module_arg=True)


def base_env(api: str, module: str) -> dict[str, str]:
    """What Lambda sets, and nothing from the caller's shell (no stray PYTHONPATH)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": api,
        "_HANDLER": f"{module}.handler",
        "LAMBDA_TASK_ROOT": str(HANDLERS),
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]bench",
        "AWS_REGION": "us-east-1",
        # Lambda's code directory is read-only: nothing is written at run time there either.
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@dataclass
class Run:
    """What one runtime process did in one trial."""

    runtime: str
    spawned_at: float
    report: dict[str, Any]
    pss_kb: int
    processes: int
    cpu_s: float = 0.0
    log: str = ""

    @property
    def to_first_next_ms(self) -> float:
        return (self.report["first_next"] - self.spawned_at) * 1000

    @property
    def to_first_response_ms(self) -> float:
        return (self.report["in_at"][0] - self.spawned_at) * 1000


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, found through the parent pids in ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_pss_kb(root: int) -> tuple[int, int]:
    """Summed ``Pss`` of the process tree, in kB, and how many processes it counted.

    PSS charges each shared page to its sharers in proportion, so a forked worker that
    still shares the supervisor's pages is not counted twice, which RSS would do.
    """
    total = count = 0
    for pid in process_tree(root):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                count += 1
                break
    return total, count


_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of the live process tree, from ``/proc/PID/stat``.

    Throughput on a shared machine moves with everyone else's load; the CPU time the
    runtime spent per invocation moves much less, so it is reported beside it.
    """
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the runtime and everything under it (our worker has a process group of its own)."""
    for pid in reversed(process_tree(proc.pid)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def pinned_to(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child to ``cpus``; None leaves it free."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def run_trial(
    stand_in: StandIn,
    runtime: Runtime,
    scenario: str,
    events: int,
    *,
    module: str | None = None,
    crash_at: Sequence[int] = (),
    timeout: float = 120.0,
    capture_log: bool = False,
    cpus: set[int] | None = None,
) -> Run:
    """Start one runtime against an armed stand-in, wait for all answers, measure, kill."""
    module = module or HANDLER_OF[scenario]
    # Request ids are plain tokens, as Lambda's are (a space would be percent-encoded).
    tag = "".join(c if c.isalnum() else "-" for c in runtime.name) + f"-{time.monotonic_ns()}"
    stand_in.arm(events, SIZES.get(scenario, 0), crash_at, tag=tag)
    env = base_env(stand_in.address, module)
    env.update(runtime.extra_env)
    argv = runtime.argv + ([f"{module}.handler"] if runtime.needs_module_arg else [])
    # Both runtimes log a line or two per trial at most: a file costs them what /dev/null
    # would, and it explains a trial that fails.
    log_path = WORK / "last-run.log"
    with open(log_path, "wb") as out:
        spawned_at = time.monotonic()
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=str(HANDLERS),
            stdout=out,
            stderr=out,
            preexec_fn=pinned_to(cpus),
        )
        try:
            try:
                report = stand_in.wait_done(timeout)
            except TimeoutError:
                state = "still running" if proc.poll() is None else f"exited with {proc.returncode}"
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"{runtime.name} ({scenario}) answered no events in {timeout:.0f}s; {state}; "
                    f"its output:\n{tail}"
                ) from None
            time.sleep(0.05)  # let it post and go back to its idle GET /next
            pss, count = tree_pss_kb(proc.pid)
            cpu = tree_cpu_seconds(proc.pid)
        finally:
            kill_tree(proc)
            stand_in.reset()
    if report.get("init_error"):
        raise RuntimeError(f"{runtime.name} reported an init error for {scenario}")
    log = log_path.read_text(errors="replace") if capture_log else ""
    return Run(runtime.name, spawned_at, report, pss, count, cpu, log)


def alternate(pairs: int) -> Iterator[tuple[int, bool]]:
    """ABBA: pair 0 runs ours first, pair 1 awslambdaric first, and so on."""
    for index in range(pairs):
        yield index, index % 2 == 0


# --- measurements ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def warm_figures(run: Run, expected_size: int) -> dict[str, float]:
    """Invocations/s and latency percentiles over the events after a short warm-up."""
    report = run.report
    count = len(report["out_at"])
    skip = max(1, count // 20)
    out_at, in_at = report["out_at"][skip:], report["in_at"][skip:]
    latencies = [(done - sent) * 1000 for sent, done in zip(out_at, in_at)]
    bad = [k for k in report["kind"] if k != "response"]
    if bad:
        raise RuntimeError(f"{run.runtime}: {len(bad)} events were not answered with a response")
    short = [n for n in report["in_bytes"] if n < expected_size]
    if short:
        raise RuntimeError(f"{run.runtime}: a response was {short[0]} bytes, the event {expected_size}")
    return {
        "ips": len(latencies) / (in_at[-1] - out_at[0]),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "pss_mb": run.pss_kb / 1024,
        "processes": run.processes,
        "cpu_s": run.cpu_s,
        "events": count,
    }


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick: bool = args.quick
        self.root: Path = Path(args.runtime_root).resolve()
        self.ours = our_runtime(self.root)
        self.aws = aws_runtime()
        self.stand_in = StandIn()
        self.results: dict[str, Any] = {"mode": "quick" if self.quick else "full", "runs": {}}
        # The "1 CPU" runs put the stand-in and the runtime on the first CPU this may use.
        self.all_cpus = os.sched_getaffinity(0)
        self.one_cpu = {min(self.all_cpus)}

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # How much of everything: (full, quick).
    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def ceiling(self) -> None:
        """The stand-in's own limit, served to a minimal keep-alive client (in C if a compiler
        is at hand: one in Python costs as much per event as the stand-in does)."""
        client = build_minimal_client()
        out: dict[str, Any] = {"client": "c" if client else "python"}
        counts = {"noop": (20000, 5000), "echo-100KB": (4000, 1000), "echo-5MB": (200, 50)}
        runs = [(scenario, None) for scenario in counts]
        if client:  # the 1 CPU rows' ceiling: the stand-in and the client pinned together
            runs += [("noop", self.one_cpu), ("echo-100KB", self.one_cpu)]
        for scenario, cpus in runs:
            key = scenario if cpus is None else f"1cpu:{scenario}"
            events = self.n(*counts[scenario])
            rates, p50s = [], []
            os.sched_setaffinity(self.stand_in.proc.pid, cpus or self.all_cpus)
            for _ in range(self.n(3, 2)):
                self.stand_in.arm(events, SIZES[scenario], tag="min")
                echo = scenario != "noop"
                if client:
                    subprocess.run(
                        [str(client), str(self.stand_in.port), str(events), str(int(echo))],
                        check=True,
                        timeout=300,
                        preexec_fn=pinned_to(cpus),
                    )
                else:
                    minimal_client(self.stand_in.port, events, echo=echo)
                report = self.stand_in.wait_done(60)
                self.stand_in.reset()
                figures = warm_figures(Run("minimal", 0.0, report, 0, 0), SIZES[scenario])
                rates.append(figures["ips"])
                p50s.append(figures["p50_ms"])
            out[key] = {"ips": rates, "p50_ms": p50s}
            self.say(f"stand-in ceiling {key}: {statistics.median(rates):,.0f} inv/s")
        os.sched_setaffinity(self.stand_in.proc.pid, self.all_cpus)
        self.results["ceiling"] = out

    def cold(self) -> None:
        """Process spawn to the first ``GET /next``, and to the first response, no-op handler.

        Then the same for a function whose init imports boto3 and makes a client (``sdk``):
        what most Python functions do at init, and where this runtime's supervisor imports
        run alongside the worker's init instead of before it. That is measured on every CPU
        and on one, since a Lambda function under 1,769 MB has less than one vCPU.
        """
        self._cold_phase("cold", "noop", self.n(30, 10), timeout=30)
        self._cold_phase("cold-sdk", "sdk", self.n(10, 4), timeout=60)
        self._cold_phase("cold-sdk-1cpu", "sdk", self.n(10, 4), timeout=60, cpus=self.one_cpu)

    def _cold_phase(
        self, phase: str, module: str, pairs: int, *, timeout: float, cpus: set[int] | None = None
    ) -> None:
        runs: dict[str, list[dict[str, float]]] = {OURS: [], AWS: []}
        for _, ours_first in alternate(pairs):
            order = (self.ours, self.aws) if ours_first else (self.aws, self.ours)
            for runtime in order:
                run = run_trial(self.stand_in, runtime, "noop", 1, module=module, timeout=timeout, cpus=cpus)
                runs[runtime.name].append(
                    {
                        "first_next_ms": run.to_first_next_ms,
                        "first_response_ms": run.to_first_response_ms,
                        "cpu_s": run.cpu_s,
                    }
                )
        self.results["runs"][phase] = runs
        self.say(
            f"{phase} to first /next: ours {_med(runs[OURS], 'first_next_ms'):.1f} ms, "
            f"awslambdaric {_med(runs[AWS], 'first_next_ms'):.1f} ms (medians of {pairs})"
        )

    def warm(self) -> None:
        """Back-to-back invocations for each payload; PSS of the idle tree afterwards.

        Then again with the stand-in and the runtime on one CPU, as everything in a Lambda
        function of up to 1,769 MB is (one vCPU or less): there the worker and the
        supervisor hand an event over without waking another CPU.
        """
        counts = {"noop": self.n(3000, 1000), "echo-100KB": self.n(1000, 300), "echo-5MB": self.n(100, 30)}
        for phase, cpus, scenarios in (
            ("warm", None, SIZES),
            ("warm-1cpu", self.one_cpu, ("noop", "echo-100KB")),
        ):
            os.sched_setaffinity(self.stand_in.proc.pid, cpus or self.all_cpus)
            for scenario in scenarios:
                self._warm_scenario(f"{phase}:{scenario}", scenario, counts[scenario], cpus)
        os.sched_setaffinity(self.stand_in.proc.pid, self.all_cpus)

    def _warm_scenario(self, phase: str, scenario: str, events: int, cpus: set[int] | None) -> None:
        runs: dict[str, list[dict[str, float]]] = {OURS: [], AWS: []}
        for _, ours_first in alternate(self.n(7, 3)):
            order = (self.ours, self.aws) if ours_first else (self.aws, self.ours)
            for runtime in order:
                run = run_trial(self.stand_in, runtime, scenario, events, cpus=cpus)
                runs[runtime.name].append(warm_figures(run, SIZES[scenario]))
        self.results["runs"][phase] = runs
        self.say(
            f"{phase}: ours {_med(runs[OURS], 'ips'):,.0f} inv/s p50 "
            f"{_med(runs[OURS], 'p50_ms'):.3f} ms; awslambdaric {_med(runs[AWS], 'ips'):,.0f} inv/s "
            f"p50 {_med(runs[AWS], 'p50_ms'):.3f} ms"
        )

    def recovery(self) -> None:
        """Ours only (awslambdaric exits when its handler does): crash, then the next event.

        Every other event makes the handler ``os._exit(1)``. Two spans are taken from the
        stand-in's clock: the crash's error report to the next ``GET /next`` (a new worker
        is ready), and to the next event's response (an event served again). The worker's
        own report of its init time comes from the supervisor's log.
        """
        crashes = self.n(20, 10)
        events = 2 * crashes + 1
        crash_at = list(range(1, events, 2))
        samples: dict[str, list[float]] = {
            "out_to_served_ms": [],
            "to_next_ms": [],
            "to_served_ms": [],
            "init_ms": [],
        }
        for _ in range(self.n(6, 3)):
            run = run_trial(
                self.stand_in, self.ours, "noop", events, module="crash", crash_at=crash_at, capture_log=True
            )
            report = run.report
            for index in crash_at:
                if report["kind"][index] != "error" or report["kind"][index + 1] != "response":
                    raise RuntimeError(f"crash event {index} was answered with {report['kind'][index]!r}")
                error_at = report["in_at"][index]
                next_at = min(t for t in report["next_at"] if t > error_at)
                samples["to_next_ms"].append((next_at - error_at) * 1000)
                samples["to_served_ms"].append((report["in_at"][index + 1] - error_at) * 1000)
                crash_out = report["out_at"][index]
                samples["out_to_served_ms"].append((report["in_at"][index + 1] - crash_out) * 1000)
            samples["init_ms"].extend(_worker_init_ms(run.log))
        self.results["runs"]["recovery"] = samples
        self.say(
            "recovery: crash report to next /next {:.1f} ms, to next response {:.1f} ms; "
            "worker init {:.2f} ms".format(
                *(statistics.median(samples[k]) for k in ("to_next_ms", "to_served_ms", "init_ms"))
            )
        )

    def bytecode(self) -> None:
        """Cold start of a deployment-like copy of the runtime, without and with ``.pyc`` files.

        Both copies hold the runtime's packages and its dependencies (urllib3, structlog)
        side by side, as a deployment package does, and run with bytecode writing off, as
        on Lambda's read-only code directory. The standard library is compiled in both,
        as it is on Lambda.
        """
        plain, compiled = build_packages(self.root)
        variants = {
            "source only": our_runtime(plain, "source only"),
            "with .pyc": our_runtime(compiled, "with .pyc"),
        }
        pairs = self.n(20, 8)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for _, plain_first in alternate(pairs):
            order = ("source only", "with .pyc") if plain_first else ("with .pyc", "source only")
            for name in order:
                run = run_trial(self.stand_in, variants[name], "noop", 1, timeout=30)
                runs[name].append(
                    {"first_next_ms": run.to_first_next_ms, "first_response_ms": run.to_first_response_ms}
                )
        self.results["runs"]["bytecode"] = runs
        self.say(
            f"cold start, source only {_med(runs['source only'], 'first_next_ms'):.1f} ms, "
            f"with .pyc {_med(runs['with .pyc'], 'first_next_ms'):.1f} ms"
        )

    def close(self) -> None:
        self.stand_in.close()


def _med(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def _worker_init_ms(log: str) -> list[float]:
    """``init_duration_ms`` of every replacement worker the supervisor logged."""
    found = []
    for line in log.splitlines():
        if "init_duration_ms" not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("reason"):
            found.append(float(record["init_duration_ms"]))
    return found


def build_packages(root: Path) -> tuple[Path, Path]:
    """Two copies of the runtime laid out like its deployment package: source only, and
    compiled with unchecked-hash ``.pyc`` files (the code of a deployment never changes, so
    there is nothing to check at import)."""
    import compileall
    import py_compile

    import structlog
    import urllib3

    made = []
    for name in ("pkg-source", "pkg-compiled"):
        target = WORK / name
        if target.exists():
            shutil.rmtree(target)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for package in ("supervisor", "worker", "bin"):
            shutil.copytree(root / package, target / package, ignore=ignore)
        for module in (urllib3, structlog):
            source = Path(module.__file__).parent  # type: ignore[arg-type]
            shutil.copytree(source, target / source.name, ignore=ignore)
        made.append(target)
    compileall.compile_dir(
        str(made[1]), quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    return made[0], made[1]


def build_minimal_client() -> Path | None:
    """Compile ``minimal_client.c`` into ``bench/work`` (once per change), or None without a
    C compiler."""
    source = BENCH / "minimal_client.c"
    binary = WORK / "minimal_client"
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    WORK.mkdir(exist_ok=True)
    built = subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], capture_output=True)
    return binary if built.returncode == 0 else None


def minimal_client(port: int, events: int, *, echo: bool) -> None:
    """The least a runtime client can do: keep-alive GET /next, POST the result, repeat.

    Raw sockets, no parsing beyond what framing needs: what the stand-in serves this
    client is the most it can serve anything.
    """
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    get = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: api\r\n\r\n"
    buf = bytearray()
    try:
        for _ in range(events):
            sock.sendall(get)
            headers, body = _read_response(sock, buf)
            request_id = headers[b"lambda-runtime-aws-request-id"].decode()
            payload = body if echo else b"null"
            sock.sendall(
                (
                    f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\nHost: api\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                ).encode()
                + payload
            )
            _read_response(sock, buf)
    finally:
        sock.close()


def _read_response(sock: socket.socket, buf: bytearray) -> tuple[dict[bytes, bytes], bytes]:
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("stand-in closed the connection")
        buf += chunk
    headers = {}
    for line in bytes(buf[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    del buf[: end + 4]
    length = int(headers.get(b"content-length", b"0"))
    while len(buf) < length:
        chunk = sock.recv(max(1 << 16, length - len(buf)))
        if not chunk:
            raise ConnectionError("stand-in closed the connection")
        buf += chunk
    body = bytes(buf[:length])
    del buf[:length]
    return headers, body


# --- main -----------------------------------------------------------------------------------

PHASES = ("ceiling", "cold", "warm", "recovery", "bytecode")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats and events (under a minute)")
    parser.add_argument(
        "--only", action="append", choices=PHASES, help="run only this phase (repeatable); results merge"
    )
    parser.add_argument(
        "--runtime-root",
        default=str(REPO),
        help="checkout whose bin/bootstrap, supervisor/ and worker/ are measured (default: this one)",
    )
    parser.add_argument(
        "--out", default=str(RESULTS), help="directory for results.md, chart.png and results.json"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ensure_venv()
    from report import write_results  # after ensure_venv: it needs matplotlib

    WORK.mkdir(exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Compile the runtime under test once up front: both runtimes then import bytecode (pip
    # compiled awslambdaric when it installed it), and none is written during the trials.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            str(Path(args.runtime_root) / "supervisor"),
            str(Path(args.runtime_root) / "worker"),
            str(HANDLERS),
        ],
        check=True,
    )
    # A SIGTERM (a CI timeout, a kill) unwinds like Ctrl-C, so no runtime is left behind.
    signal.signal(signal.SIGTERM, _interrupt)
    bench = Bench(args)
    started = time.monotonic()
    bench.say(f"{bench.results['mode']} run; stand-in on {bench.stand_in.address}; runtime from {bench.root}")
    try:
        for phase in args.only or PHASES:
            getattr(bench, phase)()
    finally:
        bench.close()
    bench.results["seconds"] = round(time.monotonic() - started, 1)
    bench.results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    bench.results["runtime_revision"] = runtime_revision(bench.root)
    merged = merge_previous(out / "results.json", bench.results) if args.only else bench.results
    (out / "results.json").write_text(json.dumps(merged, indent=1))
    write_results(merged, out)
    bench.say(f"done in {bench.results['seconds']:.0f} s; see {out / 'results.md'}")
    return 0


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def runtime_revision(root: Path) -> str:
    """The commit the measured runtime came from, marked when its code differs from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "supervisor", "worker", "bin"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{root} (not a git checkout)"
    return f"{head} with uncommitted changes to the runtime" if changes else head


def merge_previous(path: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    """With ``--only``, keep the other phases' figures from the last run."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return fresh
    previous.setdefault("runs", {}).update(fresh["runs"])
    if "ceiling" in fresh:
        previous["ceiling"] = fresh["ceiling"]
    previous["mode"] = fresh["mode"]
    previous["runtime_revision"] = fresh.get("runtime_revision")
    return previous


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    sys.exit(main())
