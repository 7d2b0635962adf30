"""Every code block of README.md and the docs site (``docs/**/*.md`` but
``docs/_incoming``) is executed or checked, one test per block (``docs/clients.md:42``).

* Python blocks run as they are, each in a fresh namespace, with the provider variables
  pointing at a running emulator, in one working directory per page (as a reader
  following a page along would: a later block may read a file an earlier one wrote).
  A block followed by a paragraph starting ``Output`` and a ``text`` block must print
  those lines: each line of the text block begins a printed line, in order.
* Shell (``bash``) blocks: the two set-up commands at the top of README.md are what CI
  runs (and ``tests/integration/mm_embed/demo`` runs the demo itself); every other line runs here, in the
  page's working directory: ``mm-embed ...`` and ``python -m mm_embed[.module] ...``
  (the same program). The servers (``mm-embed serve``, ``mm-embed explore``,
  ``python -m mm_embed.emulator``) are started on a free port (a ``--port N`` is
  rewritten to 0: the documented port may be taken here), must print their
  ``listening on http://127.0.0.1:`` line within a bound, and are stopped; every other
  command must exit 0 (a ``> file`` redirect must write something). ``pytest`` lines
  must name paths the plain ``pytest`` run already covers; ``export`` lines must set
  mm-embed's variables to values the default emulator accepts.
* ``console`` blocks are never executed: transcripts (``$ command``, its output, its
  exit status) and maintenance commands that must not run in tests (``python
  docs/_ext/report_screenshot.py`` rewrites ``docs/assets/report.png``). What such a
  transcript shows is tested elsewhere: by a Python block of the page or by the area's
  own tests. ``text`` blocks are output or plain listings.
* ``pip install "mm-embed[...]"`` lines anywhere must name extras that exist.
* Blocks run in page order (README.md first), so a shell line may use a file an earlier
  Python block of its page wrote.

The pages themselves are checked too: README.md stays short and starts with the set-up
commands, its quick starts and feature table are the docs' own (so they cannot drift),
every relative link resolves to a file and heading, and no page copies the measured
numbers whose one home is ``benchmarks/README.md``.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markdown.extensions.toc import slugify as mkdocs_slugify

from mm_embed.config import EnvVar
from mm_embed.emulator import EmulatorConfig
from mm_embed.providers import _client as provider_client  # its one-time warnings
from tests.integration._helpers import REPO as ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
INCOMING = DOCS / "_incoming"
BENCHMARKS_README = ROOT / "benchmarks" / "README.md"
README_MAX_LINES = 250
PAGES = [
    README,
    *sorted(p for p in DOCS.rglob("*.md") if INCOMING not in p.parents),
]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
# Used with ``.match(text, end_of_block)``: anchored there (``\A`` would only match at 0).
OUTPUT = re.compile(r"\s*Output[^\n]*:\s*\n\s*```text\n(.*?)^```", re.S | re.M)
SETUP_MARKERS = ("<!-- demo-command -->", "<!-- test-command -->")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str  # relative to the repository root
    line: int
    language: str
    code: str
    expected: str  # the ``Output`` block's text after it, or ""

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    def commands(self) -> list[str]:
        """The block's non-blank, non-comment lines."""
        stripped = (line.strip() for line in self.code.splitlines())
        return [line for line in stripped if line and not line.startswith("#")]


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path`` but README's set-up commands (CI runs them)."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if text[: match.start()].rstrip().endswith(SETUP_MARKERS):
            continue
        output = OUTPUT.match(text, match.end())
        found.append(
            Block(
                _relative(path),
                text.count("\n", 0, match.start()) + 1,
                match.group(1),
                match.group(2),
                output.group(1) if output else "",
            )
        )
    return found


BLOCKS = [block for page in PAGES for block in _blocks(page)]
RUNNABLE = [block for block in BLOCKS if block.language in ("python", "bash")]
PIP_BLOCKS = [b for b in BLOCKS if any(c.startswith("pip install") for c in b.commands())]


def _python_blocks(page: Path) -> list[str]:
    return [b.code for b in _blocks(page) if b.language == "python"]


# --------------------------------------------------------------------------- README


def test_readme_starts_with_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_two = list(FENCE.finditer(text))[:2]
    for marker, fence, ending in zip(
        SETUP_MARKERS, first_two, ("mm-embed demo", "pytest"), strict=True
    ):
        assert text[: fence.start()].rstrip().endswith(marker)
        assert fence.group(2).strip().endswith(ending)
    # .ci/run reads the test command as the marker block's non-fence lines
    between = text.split("<!-- test-command -->")[1].split("<!-- /test-command -->")[0]
    command = [line for line in between.splitlines() if line and not line.startswith("`")]
    assert len(command) == 1 and command[0].endswith("&& pytest")


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_readme_quick_starts_are_the_getting_started_page_s() -> None:
    """README's quick starts are copies of the site's: equal, so neither drifts."""
    readme = _python_blocks(README)
    assert len(readme) == 3  # core, LangChain, LlamaIndex
    assert readme == _python_blocks(DOCS / "getting-started.md")


def test_readme_feature_table_is_the_home_page_s() -> None:
    def feature_table(path: Path) -> str:
        text = path.read_text(encoding="utf-8")
        start = text.index("| Provider feature |")
        end = text.find("\n\n", start)
        return text[start:end]

    assert feature_table(README) == feature_table(DOCS / "index.md")


def test_every_output_paragraph_belongs_to_a_block() -> None:
    """Each ``Output:`` + ``text`` block is read as the expected output of the block
    before it (none is silently left unchecked)."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        paragraphs = len(re.findall(r"^Output[^\n]*:\s*\n\s*```text\n", text, re.M))
        attached = [b for b in _blocks(page) if b.expected]
        assert len(attached) == paragraphs, _relative(page)


def test_every_page_is_checked_and_no_example_was_dropped() -> None:
    in_docs = [b for b in RUNNABLE if b.page != "README.md" and b.language == "python"]
    # 26 Python examples lived in the README before the site; one per page kind was added
    assert len(in_docs) >= 30
    assert {p.name for p in PAGES} >= {"README.md", "index.md", "clients.md", "bulk.md"}


# --------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One working directory per page, created on first use."""
    return {_relative(page): tmp_path_factory.mktemp(page.stem) for page in PAGES}


def _provider_env(emu: Any) -> dict[str, str]:
    return {
        EnvVar.FGCLIP_API_KEY: emu.api_key,
        EnvVar.FGCLIP_BASE_URL: emu.url,
        EnvVar.VOLC_ACCESSKEY: emu.access_key,
        EnvVar.VOLC_SECRETKEY: emu.secret_key,
        EnvVar.VIKING_BASE_URL: emu.url,
    }


@pytest.fixture
def provider_env(
    emulator_session: Any, redis_server: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    for variable in EnvVar:
        monkeypatch.delenv(variable, raising=False)
    for name, value in _provider_env(emulator_session).items():
        monkeypatch.setenv(name, value)
    # The many-hosts examples share a budget through the session's real Redis server.
    monkeypatch.setenv("REDIS_URL", redis_server)
    # Each example runs as in a fresh process: the core's once-per-process warnings
    # (a retiring model version ...) show again, as the page says they do.
    monkeypatch.setattr(provider_client, "_warned", set())
    yield
    if "llama_index.core" in sys.modules:  # an example sets the global embed model
        from llama_index.core import Settings

        Settings._embed_model = None


def _check_printed(block: Block, printed: list[str]) -> None:
    assert printed, "every example prints what it shows"
    position = 0
    for want in (line for line in block.expected.splitlines() if line.strip()):
        while position < len(printed) and not printed[position].startswith(want):
            position += 1
        assert position < len(printed), f"{block.id}: {want!r} not printed: {printed}"
        position += 1


def _run_python(block: Block, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block.code, block.id, "exec"), {"__name__": "__docs__"})
    _check_printed(block, capsys.readouterr().out.splitlines())
    assert block.expected, f"{block.id}: show what the example prints (Output: and a text block)"


#: Seconds a server has to print its ``listening on`` line (it prints it at once).
SERVER_START_S = 60
#: Seconds any other command may run (the slowest, ``mm-embed demo``, takes a few).
COMMAND_S = 240


@dataclass(frozen=True)
class ShellCommand:
    """One shell line as a program: ``python -m module args``, its redirect, its kind."""

    module: str
    args: list[str]
    redirect: str | None

    @property
    def is_server(self) -> bool:
        """Whether it runs until stopped (and announces itself with ``listening on``)."""
        if self.module == "mm_embed.emulator":
            return True
        return self.module == "mm_embed" and self.args[:1] in (["serve"], ["explore"])

    def argv(self) -> list[str]:
        args = list(self.args)
        if self.is_server:
            # The documented port may be taken here: a free one instead.
            if "--port" in args:
                args[args.index("--port") + 1] = "0"
            else:
                args += ["--port", "0"]
        return [sys.executable, "-m", self.module, *args]


def _parse_shell_line(block: Block, line: str) -> ShellCommand:
    """``mm-embed X ...`` or ``python -m mm_embed[.module] ...``, with an optional
    ``&`` (backgrounded) and ``> file`` redirect; ``# comments`` are dropped."""
    words = shlex.split(line, comments=True)
    if words and words[-1] == "&":
        words.pop()
    redirect = None
    if ">" in words:
        at = words.index(">")
        words, redirect = words[:at], words[at + 1]
    if words[:1] == ["mm-embed"]:
        return ShellCommand("mm_embed", words[1:], redirect)
    if len(words) >= 3 and words[0] in ("python", "python3") and words[1] == "-m":
        module = words[2]
        assert module == "mm_embed" or module.startswith("mm_embed."), f"{block.id}: {line}"
        return ShellCommand(module, words[3:], redirect)
    raise AssertionError(f"{block.id}: undocumented kind of command (use a console block): {line}")


def _first_line(process: subprocess.Popen[str], seconds: float) -> str:
    """The process's first stdout line, or ``""`` if it ended or said nothing in time."""
    stdout = process.stdout
    assert stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=seconds)
    except queue.Empty:
        return ""


def _run_server(command: ShellCommand, workdir: Path, env: dict[str, str]) -> None:
    """Start a server, check its ``listening on`` line, stop it."""
    process = subprocess.Popen(
        command.argv(),
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = _first_line(process, SERVER_START_S)
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate(timeout=30)
    assert line.startswith("listening on http://127.0.0.1:"), (line, stderr[-2000:])


def _check_export(block: Block, line: str) -> None:
    """``export NAME=value ...``: mm-embed's variables, set to what ``mm-embed serve``
    with its defaults accepts (its documented port, its test credentials)."""
    defaults = EmulatorConfig()
    accepted = {
        EnvVar.FGCLIP_API_KEY: defaults.api_key,
        EnvVar.FGCLIP_BASE_URL: f"http://{defaults.host}:{defaults.port}",
        EnvVar.VOLC_ACCESSKEY: defaults.access_key,
        EnvVar.VOLC_SECRETKEY: defaults.secret_key,
        EnvVar.VIKING_TOKEN: defaults.token,
        EnvVar.VIKING_BASE_URL: f"http://{defaults.host}:{defaults.port}",
    }
    for assignment in shlex.split(line)[1:]:
        name, _, value = assignment.partition("=")
        assert name in accepted, f"{block.id}: {name} is not a variable mm-embed reads"
        assert value == accepted[EnvVar(name)], f"{block.id}: {name}={value!r}"


def _run_shell_line(block: Block, line: str, workdir: Path, emu: Any) -> None:
    if line.startswith("export "):
        _check_export(block, line)
        return
    if line.startswith("pytest"):
        # Covered by the plain ``pytest`` run itself: the paths must be in its testpaths.
        paths = [a for a in shlex.split(line, comments=True)[1:] if not a.startswith("-")]
        testpaths = PYPROJECT["tool"]["pytest"]["ini_options"]["testpaths"]
        assert paths and all((ROOT / p).exists() and p.rstrip("/") in testpaths for p in paths)
        return
    command = _parse_shell_line(block, line)
    env = {k: v for k, v in os.environ.items() if k not in set(EnvVar)}
    env.update(_provider_env(emu))
    if command.is_server:
        _run_server(command, workdir, env)
        return
    done = subprocess.run(
        command.argv(),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if command.redirect is not None:
        target = workdir / command.redirect
        target.write_text(done.stdout)
        assert target.stat().st_size > 0


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")
@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_block_runs(
    block: Block,
    workdirs: dict[str, Path],
    emulator_session: Any,
    provider_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workdir = workdirs[block.page]
    monkeypatch.chdir(workdir)
    if block.language == "python":
        _run_python(block, capsys)
        return
    for line in block.commands():
        _run_shell_line(block, line, workdir, emulator_session)


@pytest.mark.parametrize("block", PIP_BLOCKS, ids=[block.id for block in PIP_BLOCKS])
def test_pip_lines_name_real_extras(block: Block) -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    for line in (c for c in block.commands() if c.startswith("pip install")):
        named = re.findall(r"mm-embed\[([^\]]+)\]", line) or re.findall(r"\.\[([^\]]+)\]", line)
        assert named, f"{block.id}: {line}"
        for group in named:
            for extra in group.split(","):
                assert extra.strip() in extras, f"{block.id}: no extra {extra!r}"


# --------------------------------------------------------------------------- links


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
DIRECTIVE = re.compile(r"^:::\s+(\S+)", re.M)


def _prose(text: str) -> str:
    """``text`` without fenced blocks and code spans (their brackets are not links)."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, each space a
    hyphen (runs are kept)."""
    text = re.sub(r"[`*_]{1,2}([^`*]+?)[`*_]{1,2}", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def site_slug(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) gives a heading."""
    return str(mkdocs_slugify(re.sub(r"[`*]", "", heading), "-"))


def _anchors(path: Path) -> tuple[set[str], set[str], set[str]]:
    """A page's heading anchors on GitHub and on the site, and its ``:::`` objects."""
    text = _prose(path.read_text(encoding="utf-8"))
    headings = HEADING.findall(text)
    return (
        {github_slug(h) for h in headings},
        {site_slug(h) for h in headings},
        set(DIRECTIVE.findall(text)),
    )


LINKS = [
    (page, target)
    for page in PAGES
    for target in dict.fromkeys(LINK.findall(_prose(page.read_text(encoding="utf-8"))))
    if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto: ...
]


@pytest.mark.parametrize(("page", "target"), LINKS, ids=[f"{_relative(p)}->{t}" for p, t in LINKS])
def test_relative_link_resolves(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f"{_relative(page)}: {target} does not exist"
    assert ROOT in resolved.parents or resolved == ROOT, f"{target} leaves the repository"
    if INCOMING in resolved.parents:
        pytest.fail(f"{_relative(page)}: {target} points into docs/_incoming")
    if not anchor:
        return
    assert resolved.suffix == ".md", f"{target}: an anchor into a file that is not Markdown"
    on_github, on_site, objects = _anchors(resolved)
    in_object = any(anchor == name or anchor.startswith(f"{name}.") for name in objects)
    assert in_object or (anchor in on_github and anchor in on_site), (
        f"{_relative(page)}: no heading #{anchor} in {_relative(resolved)} "
        "(the anchor must be the same on GitHub and on the site)"
    )


def test_links_are_found() -> None:
    assert any(page == README and target.startswith("docs/") for page, target in LINKS)
    assert len(LINKS) >= 20


# --------------------------------------------------------------------------- benchmarks


def _measured_numbers() -> set[str]:
    """The distinctive numbers of benchmarks/README.md's "measured" columns."""
    numbers: set[str] = set()
    column: int | None = None
    for line in BENCHMARKS_README.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            column = None
        elif "measured" in cells:
            column = cells.index("measured")
        elif column is not None and column < len(cells):
            for number in re.findall(r"\d[\d,.]*\d|\d", cells[column]):
                round_number = re.fullmatch(r"\d{1,3}(,000)+|\d+000", number)
                # Plain 3-digit integers (HTTP 200, 240 MB) are too common to tell apart.
                distinctive = re.search(r"[.,]", number) or len(number) >= 4
                if distinctive and not round_number:
                    numbers.add(number)
    return numbers


MEASURED = _measured_numbers()


def test_benchmark_numbers_are_found() -> None:
    assert {"1.015", "1,248", "3,109"} <= MEASURED


@pytest.mark.parametrize("page", PAGES, ids=[_relative(p) for p in PAGES])
def test_page_copies_no_benchmark_number(page: Path) -> None:
    """benchmarks/README.md is the one home of measured numbers: pages link to it."""
    text = page.read_text(encoding="utf-8")
    copied = sorted(n for n in MEASURED if re.search(rf"(?<![\d.,]){re.escape(n)}(?![\d])", text))
    assert not copied, f"{_relative(page)} copies benchmark numbers {copied}: link instead"
