"""Per-kernel budgets of processes and memory: a cgroup of its own for every kernel.

Why. ``RLIMIT_NPROC`` counts every process of a *uid*. A root grader gives each kernel a
uid of its own (:class:`~mdplab.grading.sandbox.Account`), but a non-root instructor has
one uid for the grader and all its kernels: one kernel holding as many processes as the
limit allows leaves none for the others, and honest submissions fail with "the kernel did
not start". A cgroup's ``pids.max`` counts the processes (and threads) of that cgroup
only, whoever runs them, root included; ``memory.max`` bounds the memory of all of them
together. So each kernel gets a cgroup of its own, and one kernel exhausting its budget
costs no one else.

Where. Making cgroups needs a folder of the cgroup tree this process may write in: a
*delegated* subtree. :func:`discover` takes, in this order,

1. ``$MDPLAB_CGROUP``: folders an administrator delegated, separated by ``:`` (one cgroup v2
   folder, or cgroup v1's pids folder and optionally its memory folder). ``off`` switches
   the budgets off. Nothing else is tried when it is set: an explicit choice that does not
   work is reported, not replaced.
2. cgroup v2: this process's own cgroup (``0::/path`` in ``/proc/self/cgroup``, under the
   cgroup2 mount) when ``pids`` is in its ``cgroup.controllers`` and we may write there.
   That is what ``systemd-run --user --scope -p Delegate=yes mdplab grade …`` gives a
   non-root user on a systemd machine with cgroup v2 (every current desktop and server
   distribution): a scope that holds only the grader, owned by the user.
3. cgroup v1: this process's own cgroup in the ``pids`` hierarchy (and the ``memory`` one
   for the memory budget) when we may write there: root on a machine with cgroup v1 or the
   hybrid layout, or a user an administrator gave a folder and put in it.

cgroup v2 allows no process in a cgroup whose children have controllers (except in the
root cgroup). Where the delegated folder holds the grader itself (the scope above), the
grader first moves itself into a leaf, ``mdplab-grader``, then enables ``pids`` and
``memory`` for the children; it does so only when it is the folder's only process, and
otherwise says why it cannot (a terminal's scope holds the shell too). That leaf stays
behind empty when the grader ends; systemd removes it with the scope.

How. :meth:`Budgets.create` makes a folder for one kernel with ``pids.max`` (the kernel's
process limit) and its memory limit (``memory.max`` and no swap on v2,
``memory.limit_in_bytes`` on v1). The kernel's process joins it between fork and exec
(:meth:`Budget.join`, writing ``0``, "the writer", to ``cgroup.procs``), so every process
it starts is born inside and counted. :meth:`Budget.remove` kills what is left
(``cgroup.kill`` on v2; on v1, with ``pids.max`` at 0 so that nothing new starts, a
SIGKILL to each member through a pidfd) and removes the folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

VARIABLE = "MDPLAB_CGROUP"
_OFF = {"off", "no", "none", "0", "false"}
KERNEL_PREFIX = "mdplab-kernel-"
PROBE_PREFIX = "mdplab-probe-"
GRADER_LEAF = "mdplab-grader"
_SYSTEMD_RUN = "systemd-run --user --scope -p Delegate=yes mdplab grade …"


@dataclass(frozen=True)
class Mount:
    """A mounted cgroup hierarchy: ``point`` shows the cgroup ``root`` and what is below."""

    point: Path
    root: str
    version: int  # 1 or 2
    controllers: frozenset[str] = frozenset()  # v1: the hierarchy's controllers

    def folder(self, path: str) -> Path | None:
        """The folder of the cgroup ``path`` (as /proc/<pid>/cgroup writes it), or None
        where this mount does not show it."""
        root = self.root.rstrip("/")
        if path != self.root and not path.startswith(root + "/"):
            return None
        return self.point / path[len(root) :].lstrip("/")


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def mounts(text: str | None = None) -> list[Mount]:
    """The cgroup hierarchies in ``/proc/self/mountinfo`` (or in ``text``)."""
    if text is None:
        text = Path("/proc/self/mountinfo").read_text()
    found = []
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        left, right = before.split(), after.split()
        if len(left) < 5 or len(right) < 3:
            continue
        kind = right[0]
        if kind == "cgroup2":
            found.append(Mount(Path(_unescape(left[4])), _unescape(left[3]), 2))
        elif kind == "cgroup":
            options = frozenset(right[2].split(","))
            found.append(Mount(Path(_unescape(left[4])), _unescape(left[3]), 1, options))
    return found


def memberships(text: str | None = None) -> dict[str, str]:
    """This process's cgroup in each hierarchy, from ``/proc/self/cgroup`` (or ``text``):
    ``""`` for cgroup v2, the controller's name (``"pids"``, ``"memory"``) for v1."""
    if text is None:
        text = Path("/proc/self/cgroup").read_text()
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            found[""] = path
        for controller in controllers.split(","):
            if controller:
                found[controller] = path
    return found


def _read(path: Path) -> str:
    return path.read_text().strip()


def _write(path: Path, text: str) -> None:
    """One write(2) of ``text``: cgroup files take each value in a single write."""
    handle = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(handle, text.encode())
    finally:
        os.close(handle)


def _members(folder: Path) -> set[int]:
    try:
        return {int(word) for word in _read(folder / "cgroup.procs").split()}
    except (FileNotFoundError, ProcessLookupError):
        return set()


def _writable(folder: Path) -> bool:
    """May we make child cgroups here? (Root may, unless the mount is read-only.)"""
    return os.access(folder, os.W_OK | os.X_OK)


def _who() -> str:
    return f"uid {os.geteuid()}"


@dataclass(frozen=True)
class Place:
    """A folder in which kernels' cgroups are made, and the controllers they get there."""

    folder: Path
    version: int
    controllers: frozenset[str]


@dataclass(frozen=True)
class Unavailable:
    """No per-kernel cgroup here; ``reason`` says why."""

    reason: str


@dataclass(frozen=True)
class Budgets:
    """Where each kernel's cgroup is made: one cgroup v2 folder, or the v1 pids folder (then
    the v1 memory folder, where there is one). ``owner`` is the process that found them: the
    kernels' cgroups carry its pid in their names, so :func:`leftovers` finds one grading
    run's own."""

    places: tuple[Place, ...]
    source: str  # how they were found, for the report
    memory_note: str = ""  # why there is no memory budget, where there is none
    owner: int = field(default_factory=os.getpid)

    @property
    def version(self) -> int:
        return self.places[0].version

    @property
    def memory(self) -> bool:
        return any("memory" in place.controllers for place in self.places)

    def describe(self) -> str:
        """For the start-up report: "per-kernel cgroup (pids.max) at <folder> …"."""
        pids, *rest = self.places
        if self.version == 2:
            text = f"per-kernel cgroup (pids.max) at {pids.folder} (cgroup v2, {self.source})"
            if self.memory:
                text += ", with memory.max"
        else:
            text = f"per-kernel cgroup (pids.max) at {pids.folder} (cgroup v1, {self.source})"
            if rest:
                text += f", with memory.limit_in_bytes at {rest[0].folder}"
        if self.memory_note:
            text += f"; no memory budget: {self.memory_note}"
        return text

    def create(
        self, processes: int, memory_bytes: int | None, prefix: str = KERNEL_PREFIX
    ) -> Budget:
        """A new cgroup with these limits (in each place), nobody in it yet. Raises OSError."""
        name = f"{prefix}{self.owner}-{os.getpid()}-{secrets.token_hex(4)}"
        made: list[Path] = []
        try:
            for place in self.places:
                folder = place.folder / name
                folder.mkdir()
                made.append(folder)
                if "pids" in place.controllers:
                    _write(folder / "pids.max", str(processes))
                if "memory" in place.controllers and memory_bytes:
                    _limit_memory(folder, place.version, memory_bytes)
        except OSError:
            Budget(tuple(made), self.version).remove(patience=2)
            raise
        return Budget(tuple(made), self.version)

    def sweep(self) -> list[Path]:
        """Remove the kernels' and probes' cgroups that a grading process left behind when
        it was killed (a worker past the batch's hard limit): those whose maker, named by
        its pid, is gone. Only rmdir, which fails on a cgroup that still holds a process,
        and only where we may; returns what was removed."""
        removed = []
        for place in self.places:
            try:
                children = [p for p in place.folder.iterdir() if _MADE.match(p.name)]
            except OSError:
                continue
            for folder in children:
                if _alive(int(_MADE.match(folder.name).group(1))):
                    continue
                with contextlib.suppress(OSError):
                    folder.rmdir()
                    removed.append(folder)
        return removed


# The name of a cgroup made by Budgets.create: prefix, owner, maker's pid, token.
_MADE = re.compile(rf"^(?:{KERNEL_PREFIX}|{PROBE_PREFIX})\d+-(\d+)-[0-9a-f]+$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    return True


def _limit_memory(folder: Path, version: int, memory_bytes: int) -> None:
    """The kernel's processes together may hold ``memory_bytes`` of memory, without swap.
    The swap and OOM settings are best effort: not every kernel offers them."""
    if version == 2:
        _write(folder / "memory.max", str(memory_bytes))
        optional = [("memory.swap.max", "0"), ("memory.oom.group", "1")]
    else:
        _write(folder / "memory.limit_in_bytes", str(memory_bytes))
        optional = [("memory.memsw.limit_in_bytes", str(memory_bytes))]
    for name, value in optional:
        with contextlib.suppress(OSError):
            _write(folder / name, value)


@dataclass(frozen=True)
class Budget:
    """One kernel's cgroup (on cgroup v1, one folder per hierarchy; the first is pids)."""

    folders: tuple[Path, ...]
    version: int

    def join(self) -> None:
        """Move the calling process into the cgroup. Called in the kernel's process between
        fork and exec, so that everything it starts is born inside. Raises OSError."""
        for folder in self.folders:
            _write(folder / "cgroup.procs", "0")  # 0: the writer itself

    def processes(self) -> int | None:
        """Processes and threads in the cgroup now (``pids.current``), None if unknown."""
        try:
            return int(_read(self.folders[0] / "pids.current"))
        except (OSError, ValueError, IndexError):
            return None

    def members(self) -> set[int]:
        """The processes in the cgroup now."""
        found: set[int] = set()
        for folder in self.folders:
            found |= _members(folder)
        return found

    def remove(self, patience: float = 10.0) -> bool:
        """Kill every process left in the cgroup and remove it. False if it was still there
        after ``patience`` seconds (then it stays, and :func:`leftovers` lists it)."""
        if not self.folders:
            return True
        first = self.folders[0]
        with contextlib.suppress(OSError):
            _write(first / "pids.max", "0")  # nothing new starts while we kill
        if self.version == 2 and (first / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                _write(first / "cgroup.kill", "1")
        deadline = time.monotonic() + patience
        remaining, removed = list(self.folders), True
        while True:
            for folder in list(remaining):
                members = _members(folder)
                for pid in members:
                    _kill(pid, folder)
                if members:
                    continue
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    pass
                except OSError as error:
                    if error.errno == errno.EBUSY:  # processes still dying: try again
                        continue
                    removed = False  # not ours to remove after all: leave it
                remaining.remove(folder)
            if not remaining:
                return removed
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def _kill(pid: int, folder: Path) -> None:
    """SIGKILL ``pid`` if it is still a member of ``folder``: through a pidfd, checked
    after opening it, so that a pid the process freed meanwhile and the kernel gave to
    someone else is never signalled (nothing new is born in the cgroup: pids.max is 0)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfds (Linux < 5.3)
        with contextlib.suppress(OSError):
            if pid in _members(folder):
                os.kill(pid, signal.SIGKILL)
        return
    try:
        if pid in _members(folder):
            signal.pidfd_send_signal(handle, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(handle)


def leftovers(budgets: Budgets) -> list[str]:
    """The kernel cgroups of ``budgets.owner``'s grading run that still exist, with their
    processes: "folder: pids" each. Empty once every kernel has been shut down."""
    found = []
    for place in budgets.places:
        pattern = f"{KERNEL_PREFIX}{budgets.owner}-*"
        for folder in sorted(place.folder.glob(pattern)):
            members = " ".join(str(pid) for pid in sorted(_members(folder))) or "no process"
            found.append(f"{folder}: {members}")
    return found


# ------------------------------------------------------------------ discovery
def discover(
    environ: Mapping[str, str] | None = None,
    cgroup_text: str | None = None,
    mountinfo_text: str | None = None,
) -> Budgets | Unavailable:
    """Where this process can give kernels cgroups of their own (see the module's text), or
    why it cannot. On cgroup v2 this may move the calling process into the leaf
    ``mdplab-grader`` of its own delegated cgroup."""
    environ = os.environ if environ is None else environ
    wanted = environ.get(VARIABLE, "").strip()
    if wanted.lower() in _OFF:
        return Unavailable(f"switched off ({VARIABLE}={wanted})")
    try:
        table, own = mounts(mountinfo_text), memberships(cgroup_text)
    except OSError as error:
        return Unavailable(f"cannot read this process's cgroups: {error}")
    if wanted:
        return _explicit(wanted, table, own)
    v2 = _own_v2(table, own)
    if isinstance(v2, Budgets):
        return v2
    v1 = _own_v1(table, own)
    if isinstance(v1, Budgets):
        return v1
    return Unavailable(f"{v2.reason}; {v1.reason}")


def _mount_of(table: list[Mount], folder: Path) -> Mount | None:
    """The mount that ``folder`` lies in (the deepest mount point above it)."""
    above = [m for m in table if folder == m.point or folder.is_relative_to(m.point)]
    return max(above, key=lambda m: len(m.point.parts), default=None)


def _own_folder(table: list[Mount], own: Mapping[str, str], key: str) -> Path | None:
    """This process's cgroup folder in the v2 hierarchy (``key`` "") or v1's ``key``."""
    path = own.get(key)
    if path is None:
        return None
    for mount in table:
        if (mount.version == 2) == (key == "") and (key == "" or key in mount.controllers):
            folder = mount.folder(path)
            if folder is not None and folder.is_dir():
                return folder
    return None


def _own_v2(table: list[Mount], own: Mapping[str, str]) -> Budgets | Unavailable:
    folder = _own_folder(table, own, "")
    if folder is None:
        return Unavailable("cgroup v2: this process's cgroup is not mounted here")
    if folder.name == GRADER_LEAF and _enabled(folder.parent) >= {"pids"}:
        folder = folder.parent  # a grader above us (or we, earlier) prepared it
    return _v2_place(folder, folder, "this process's own cgroup")


def _enabled(folder: Path) -> set[str]:
    try:
        return set(_read(folder / "cgroup.subtree_control").split())
    except OSError:
        return set()


def _v2_place(folder: Path, own: Path | None, source: str) -> Budgets | Unavailable:
    """``folder`` of cgroup v2 as the place for kernels' cgroups, made ready; or why not."""
    try:
        offered = set(_read(folder / "cgroup.controllers").split())
    except OSError as error:
        return Unavailable(f"cgroup v2: cannot read {folder}/cgroup.controllers: {error}")
    if "pids" not in offered:
        listed = " ".join(sorted(offered)) or "none"
        return Unavailable(
            f"cgroup v2: {folder} offers no pids controller (cgroup.controllers: {listed})"
        )
    if not (_writable(folder) and os.access(folder / "cgroup.subtree_control", os.W_OK)):
        return Unavailable(f"cgroup v2: {folder} is not delegated to {_who()} (not writable)")
    # A process may move another only within a subtree whose cgroup.procs it may write.
    common = Path(os.path.commonpath([folder, own])) if own is not None else None
    if common is None or not os.access(common / "cgroup.procs", os.W_OK):
        return Unavailable(
            f"cgroup v2: this process is outside {folder} and may not move kernels into it "
            "(cgroup v2 lets it move processes only within a subtree it may write); start "
            "the grader inside that folder"
        )
    wanted = {"pids"} | ({"memory"} & offered)
    problem = _enable(folder, wanted)
    if problem:
        return Unavailable(f"cgroup v2: {problem}")
    note = "" if "memory" in offered else f"{folder} offers no memory controller"
    return Budgets((Place(folder, 2, frozenset(wanted)),), source, note)


def _enable(folder: Path, wanted: set[str]) -> str:
    """Enable ``wanted`` for the children of ``folder``: "" when done, else why not."""
    missing = wanted - _enabled(folder)
    if not missing:
        return ""
    text = " ".join(f"+{name}" for name in sorted(missing))
    try:
        _write(folder / "cgroup.subtree_control", text)
        return ""
    except OSError as error:
        if error.errno != errno.EBUSY:
            return f"could not write {text!r} to {folder}/cgroup.subtree_control: {error}"
    # Busy: processes in the folder itself. Move ourselves out of the way, but only
    # ourselves; a folder that holds others (a terminal's scope, with its shell) is not ours.
    others = _members(folder) - {os.getpid()}
    if others:
        return (
            f"{folder} holds {len(others)} other process(es), and cgroup v2 allows no "
            "process beside child cgroups with controllers; start the grader in a cgroup "
            f"of its own: {_SYSTEMD_RUN}"
        )
    leaf = folder / GRADER_LEAF
    try:
        leaf.mkdir(exist_ok=True)
        _write(leaf / "cgroup.procs", str(os.getpid()))
        _write(folder / "cgroup.subtree_control", text)
    except OSError as error:
        return f"could not move the grader into {leaf} and enable {text}: {error}"
    return ""


def _explicit(wanted: str, table: list[Mount], own: Mapping[str, str]) -> Budgets | Unavailable:
    """The folders of ``$MDPLAB_CGROUP``."""
    source = f"from {VARIABLE}"
    pids: Place | None = None
    memory: Place | None = None
    for text in wanted.split(os.pathsep):
        folder = Path(text.strip())
        if not folder.is_absolute() or not folder.is_dir():
            return Unavailable(f"{VARIABLE}: {text} is not a cgroup folder")
        mount = _mount_of(table, folder)
        if mount is None:
            return Unavailable(f"{VARIABLE}: {folder} is not in a mounted cgroup hierarchy")
        if mount.version == 2:
            return _v2_place(folder, _own_folder(table, own, ""), source)
        if not _writable(folder):
            return Unavailable(f"{VARIABLE}: {folder} is not delegated to {_who()}")
        if "pids" in mount.controllers:
            pids = Place(folder, 1, frozenset({"pids"}))
        elif "memory" in mount.controllers:
            memory = Place(folder, 1, frozenset({"memory"}))
    if pids is None:
        return Unavailable(f"{VARIABLE}={wanted} names no folder of the pids hierarchy")
    note = "" if memory else f"{VARIABLE} names no folder of cgroup v1's memory hierarchy"
    return Budgets((pids,) if memory is None else (pids, memory), source, note)


def _own_v1(table: list[Mount], own: Mapping[str, str]) -> Budgets | Unavailable:
    folder = _own_folder(table, own, "pids")
    if folder is None:
        return Unavailable("cgroup v1: no pids hierarchy is mounted here")
    if not _writable(folder):
        return Unavailable(f"cgroup v1: {folder} is not delegated to {_who()} (not writable)")
    pids = Place(folder, 1, frozenset({"pids"}))
    memory_folder = _own_folder(table, own, "memory")
    if memory_folder is None:
        return Budgets((pids,), "this process's own cgroup", "no memory hierarchy is mounted")
    if not _writable(memory_folder):
        note = f"{memory_folder} is not delegated to {_who()}"
        return Budgets((pids,), "this process's own cgroup", note)
    memory = Place(memory_folder, 1, frozenset({"memory"}))
    return Budgets((pids, memory), "this process's own cgroup")
