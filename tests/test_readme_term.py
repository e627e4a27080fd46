"""The README's term walkthrough, run as written from the repository with its ``.venv``.

The commands are read from the README (the bash block after ``<!-- term-walkthrough -->``)
and run one by one by bash in the repository, with ``HOME`` pointing at a scratch folder
so that ``~/mdp-term`` lands there. ``mdplab formgrader`` serves until it is stopped: the
test waits until formgrader answers, then presses Ctrl-C (SIGINT), as the README says.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from course_helpers import LAYOUT

pytestmark = pytest.mark.slow

MARK = "<!-- term-walkthrough -->"
VENV_BIN = LAYOUT.root / ".venv" / "bin"


def walkthrough() -> list[str]:
    text = LAYOUT.readme.read_text(encoding="utf-8")
    assert MARK in text, "the README lost its term walkthrough"
    block = re.search(r"```bash\n(.*?)```", text[text.index(MARK) :], flags=re.DOTALL)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_walkthrough_is_the_term_round_trip():
    commands = [line.split()[1] for line in walkthrough()]
    assert commands == ["class", "grade", "grade", "formgrader", "export"]
    assert all(line.startswith(".venv/bin/mdplab ") for line in walkthrough())


def _serve_until_answered(line: str, env: dict[str, str]) -> str:
    """Run the formgrader line; once formgrader answers, Ctrl-C it. Returns its output."""
    server = subprocess.Popen(
        ["bash", "-c", f"exec {line}"],
        cwd=LAYOUT.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None and time.monotonic() < deadline:
            text = server.stdout.readline()
            if not text:
                break
            seen.append(text)
            # Jupyter prints its address with the token masked; the token is the one set.
            found = re.search(r"(http://(?:localhost|127\.0\.0\.1):\d+/)", text)
            if found:
                token = env["JUPYTER_TOKEN"]
                url = f"{found.group(1)}formgrader/api/submissions/lab00?token={token}"
        assert url is not None, "".join(seen)
        listing = ""
        while not listing and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    listing = response.read().decode()
            except OSError:  # printed its address a moment before it listens
                time.sleep(0.5)
        assert '"lovelaceada"' in listing, listing[:500] + "".join(seen)
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: Jupyter asks to confirm; a second stops it
        time.sleep(0.5)
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
        try:
            rest = server.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            server.kill()
            rest = server.communicate()[0]
    return "".join(seen) + (rest or "")


def test_the_readme_walkthrough_runs_as_written(tmp_path):
    if not (VENV_BIN / "mdplab").exists():
        pytest.fail(f"no {VENV_BIN / 'mdplab'}: `make demo` or `make test` makes the venv")
    env = dict(os.environ, HOME=str(tmp_path), BROWSER="true", JUPYTER_TOKEN="walkthrough")
    env.pop("VIRTUAL_ENV", None)
    # The commands use .venv/bin/mdplab alone, as an instructor without an active venv.
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    outputs = []
    for line in walkthrough():
        if " formgrader " in f"{line} ":
            outputs.append(_serve_until_answered(line, env))
            continue
        run = subprocess.run(
            ["bash", "-c", line], cwd=LAYOUT.root, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert run.returncode == 0, f"{line}\n{run.stdout}\n{run.stderr}"
        outputs.append(run.stdout)
    term = tmp_path / "mdp-term"
    assert "class ready" in outputs[0]
    assert "turingalan" in outputs[1] and "late" in outputs[1]
    assert "grades: " in outputs[2]
    canvas = list(csv.reader((term / "export" / "canvas.csv").open()))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[0][5:] == ["lab00_orientation", "lab01_dp_review"]
    assert len(canvas) == 2 + 8  # the Points Possible row, then the roster
    missing = next(row for row in canvas if row[0] == "Curie, Marie")
    assert missing[5:] == ["", ""]
    assert "1 missing" in outputs[4]
    assert not list(LAYOUT.root.glob("mdp-term")), "the walkthrough wrote into the repository"
    assert Path(term / "class.toml").exists()
