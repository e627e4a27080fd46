"""Running notebooks with nbclient, in a kernel of the current Python."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets.config import Config

from mdplab.course import warm_kernel
from mdplab.course.kernel_client import WakefulKernelManager

__all__ = ["KERNEL_ENV", "QUIET_KERNEL", "CellExecutionError", "execute_notebook"]

# ipykernel logs a warning about its TCP transport on every start; it says nothing about
# the notebook, so keep the kernel's own log to errors. Cell output is unaffected.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR", "--HistoryManager.hist_file=:memory:"]

# What a kernel must not take from the machine it runs on, so that a notebook gives the
# same bytes everywhere (built solutions are committed, and `make demo` rebuilds them).
# Set over the caller's environment: a fixed hash salt (set and dict order), one BLAS
# thread (MKL's sums depend on the thread count), and the inline backend even where the
# host exports MPLBACKEND (with MPLBACKEND=Agg no figure is drawn at all). The kernel also
# gets an empty matplotlibrc, so that a ~/.config/matplotlib/matplotlibrc does not restyle
# figures (`mathtext.fontset: cm` there redrew every figure with a formula or a log axis),
# and an IPython profile of its own with KERNEL_CONFIG, so that ~/.ipython does not
# (`InlineBackend.figure_formats = {'retina'}` doubles every PNG).
KERNEL_ENV = {
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    # Tells a cell that times something (lab06's served policy) that this run is a build:
    # it then prints where its timings would go, as a clock's readings differ every run.
    "MDPLAB_BUILD": "1",
}

# matplotlib writes its version into every PNG ("Software: Matplotlib version3.11.2,
# https://matplotlib.org/"); None leaves that text out. bbox_inches="tight" is the inline
# backend's default, which setting print_figure_kwargs would otherwise drop.
KERNEL_CONFIG = (
    "c.InlineBackend.print_figure_kwargs = "
    "{'bbox_inches': 'tight', 'metadata': {'Software': None}}\n"
)


def execute_notebook(
    notebook: nbformat.NotebookNode,
    *,
    cwd: Path,
    timeout: int = 300,
    kernel_name: str = "python3",
    allow_errors: bool = False,
    draw_figures: bool = True,
    warm: bool = False,
) -> nbformat.NotebookNode:
    """Execute ``notebook`` in place, as if it sat in the folder ``cwd``; raise
    CellExecutionError on the first error unless ``allow_errors``.

    The kernel runs in a scratch folder laid out like ``cwd``'s parent: a folder named like
    ``cwd`` next to a link to the sibling ``data/``. A lab reads the shipped data as it does
    from a clone (``../data``), and what it writes (an exported policy, a downloaded trace)
    never lands in the repository.

    The client is :class:`~mdplab.course.kernel_client.WakefulKernelManager`'s, which does
    not sleep through a reply when a cell clears an Output widget (jupyter/nbclient#312),
    so a cell past ``timeout`` seconds really is stuck: CellTimeoutError is raised.

    Consecutive output on one stream is merged into one output, as the kernel happened to
    flush it.

    The kernel runs with :data:`KERNEL_ENV`, matplotlib's default settings and an IPython
    profile with :data:`KERNEL_CONFIG`, so that its figures do not depend on the machine.

    ``draw_figures=False`` gives the kernel matplotlib's Agg backend, on which ``plt.show()``
    draws nothing: for a run that only wants the test cells' verdicts (the catalogue checks
    hundreds of answers), where rendering each figure to a PNG took a second a notebook.

    ``warm=True`` (only with ``draw_figures=False``) forks the kernel from this process's
    fork server, which has imported ipykernel, numpy, matplotlib and the checks already
    (:mod:`mdplab.course.warm_kernel`): it starts in a fraction of a cold kernel's two
    seconds, and falls back to a cold kernel whenever the server cannot serve. Its cells
    give the same outputs; the build, which commits its notebooks byte for byte, keeps
    cold kernels all the same.
    """
    if warm and draw_figures:
        raise ValueError("warm kernels run without figures: pass draw_figures=False")
    with tempfile.TemporaryDirectory(prefix="mdplab-run-") as scratch:
        run = Path(scratch) / cwd.name
        run.mkdir()
        data = cwd.parent / "data"
        if data.is_dir():
            (Path(scratch) / "data").symlink_to(data.resolve(), target_is_directory=True)
        env = _kernel_env(Path(scratch) / ".kernel")
        if not draw_figures:
            env["MPLBACKEND"] = "agg"
        manager: type[WakefulKernelManager] = WakefulKernelManager
        # Unix sockets in the scratch folder, not TCP ports: a port picked free can be
        # taken by another process before the kernel binds it, and the kernel then dies
        # at start-up while the client waits for it forever (seen under a parallel run).
        config = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(scratch) / "k")}})
        address = warm_kernel.fork_server(env) if warm else None
        if address:
            manager = warm_kernel.WarmKernelManager
            config.WarmKernelManager.fork_server = address
        client = NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name=kernel_name,
            allow_errors=allow_errors,
            # Timestamps would make every rebuild a diff.
            record_timing=False,
            # The kernel flushes stdout on a timer, so under load one print may arrive as
            # two messages; merged, a cell's text is the same on every run.
            coalesce_streams=True,
            # Once the last cell has run, every output is in: a graceful shutdown would only
            # wait (0.7 s a notebook, a third of it CPU) while the kernel tidies up a process
            # that is about to end. The catalogue test runs hundreds of notebooks.
            shutdown_kernel="immediate",
            extra_arguments=QUIET_KERNEL,
            resources={"metadata": {"path": str(run)}},
            kernel_manager_class=manager,
            config=config,
        )
        client.execute(env=env)
    return notebook


def _kernel_env(home: Path) -> dict[str, str]:
    """The caller's environment with :data:`KERNEL_ENV` over it, and matplotlib's and
    IPython's settings in ``home``: an empty matplotlibrc, a profile with KERNEL_CONFIG."""
    profile = home / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG, encoding="utf-8")
    rc = home / "matplotlibrc"
    rc.write_text("# matplotlib's defaults\n", encoding="utf-8")
    return {
        **os.environ,
        **KERNEL_ENV,
        "MATPLOTLIBRC": str(rc),
        "IPYTHONDIR": str(home / "ipython"),
    }
