"""A budget holder in its own process, for the multi-process tests (run as a script).

``pace URL RATE CAPACITY AMOUNT AHEAD``: hold up to ``AHEAD`` tickets of ``AMOUNT``
units of one quota, joining the line as a client does (only while it is shorter than a
window), like a client with that many requests waiting; print
``grant <time> <amount>`` whenever the oldest comes due and ``holding <units>``
whenever what it holds while waiting changes, until stdin closes (or 120 s).
``hang PATH``: freeze inside a FileBudget write transaction (its clock never returns).
``take KIND TARGET``: take 1 unit from a file (path) or redis (URL) budget, print the
bucket state as JSON.
``positions URL COUNT``: take COUNT tickets of 1 unit as fast as it can, print their
positions as JSON.
``open PATH``: wait for a line on stdin, then open a FileBudget at PATH (a new file,
opened by every worker at once) and take 1 unit; print ``opened``.
``embed N TAG``: a VikingClient built from the environment (credentials, base URL and
``MM_EMBED_BUDGET``; no ``budget=``) embeds N texts with bge-m3; prints JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict

from mm_embed.budgets import Budget, FileBudget, Quota, RedisBudget, Ticket, budget_from_url

ACCOUNT = "acct"
MAX_RUN_S = 120.0


def run_together(
    commands: Sequence[Sequence[str]],
    *,
    env: Mapping[str, str] | None = None,
    before_go: Callable[[], None] = lambda: None,
    timeout: float = 60.0,
) -> list[str]:
    """Start one worker per command (``[mode, *args]``), wait until every one says
    ``ready``, call ``before_go``, let them all go at once, and return each one's last
    line of output, in order. A worker that fails fails the test with its stderr."""
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, *command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=None if env is None else dict(env),
        )
        for command in commands
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == "ready", proc.communicate(timeout=timeout)[1][-2000:]
        before_go()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        lasts = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err[-2000:]
            lasts.append(out.strip().splitlines()[-1])
        return lasts
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def pace(url: str, rate: float, capacity: float, amount: float, ahead: int) -> None:
    budget = budget_from_url(url)
    quota = Quota("tokens:pace", rate, capacity)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    held: deque[Ticket] = deque()
    shown = 0.0
    say("ready")
    deadline = time.monotonic() + MAX_RUN_S
    while not stop.is_set() and time.monotonic() < deadline:
        while len(held) < ahead:
            ticket = budget.join(ACCOUNT, quota, amount)
            if ticket is None:  # the line is a window long: ask again later
                break
            held.append(ticket)
        if not held:
            time.sleep(0.05)
            continue
        wait = budget.due_in(held[0])
        if wait > 0:
            holding = sum(t.amount for t in held)
            if holding != shown:  # tickets taken and not yet due: what a SIGKILL strands
                say(f"holding {holding}")
                shown = holding
            time.sleep(min(wait, 0.05))
            continue
        say(f"grant {time.time():.6f} {held.popleft().amount}")


def hang(path: str) -> None:
    def frozen_clock() -> float:
        say("in-transaction")
        time.sleep(MAX_RUN_S)
        return time.time()

    FileBudget(path, clock=frozen_clock).take(ACCOUNT, Quota("tokens:pace", 1, 1), 1)


def take(kind: str, target: str) -> None:
    budget: Budget = FileBudget(target, busy_timeout=5.0) if kind == "file" else RedisBudget(target)
    quota = Quota("tokens:pace", 200.0, 400.0)
    budget.take(ACCOUNT, quota, 1)
    say(json.dumps(asdict(budget.state(ACCOUNT, quota))))
    budget.close()


def positions(url: str, count: int) -> None:
    budget = budget_from_url(url)
    quota = Quota("tokens:positions", 1.0, 1.0)
    say("ready")
    sys.stdin.readline()  # all start together
    say(json.dumps([budget.take(ACCOUNT, quota, 1).position for _ in range(count)]))


def open_together(path: str) -> None:
    say("ready")
    sys.stdin.readline()  # all open the new file together
    with FileBudget(path) as budget:
        budget.take(ACCOUNT, Quota("tokens:open", 1.0, 1.0), 1)
    say("opened")


def embed(n: int, tag: str) -> None:
    from mm_embed import VikingClient

    texts = [f"shared budget text {tag} number {i} with a few words" for i in range(n)]
    with VikingClient(max_retries=0) as client:
        say("ready")
        sys.stdin.readline()  # the test spends from the shared bucket meanwhile
        started = time.monotonic()
        result = client.embed(texts, model="bge-m3")
        elapsed = time.monotonic() - started
        quota = client.tokens_quota("bge-m3")
        assert quota is not None
        state = client.budget.state(client.account, quota)
        say(
            json.dumps(
                {
                    "budget": type(client.budget).__name__,
                    "rows": len(result),
                    "billed": result.usage.total_tokens,
                    "consumed": state.consumed,
                    "elapsed": elapsed,
                }
            )
        )


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "pace":
        pace(args[0], float(args[1]), float(args[2]), float(args[3]), int(args[4]))
    elif mode == "hang":
        hang(args[0])
    elif mode == "take":
        take(args[0], args[1])
    elif mode == "positions":
        positions(args[0], int(args[1]))
    elif mode == "open":
        open_together(args[0])
    elif mode == "embed":
        embed(int(args[0]), args[1])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
