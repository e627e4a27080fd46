"""nbgrader settings of the MDP Labs course.

Run nbgrader from this folder (``cd autograder && nbgrader ...``) or through ``mdplab``,
which loads this file and points ``CourseDirectory.root`` at the working course it uses.
"""

from pathlib import Path

c = get_config()  # noqa: F821 -- nbgrader injects get_config when it loads this file

c.CourseDirectory.course_id = "mdp-labs"
# The folder of this file, absolute: nbgrader warns about a relative root at every command,
# and a working course (which holds a copy of this file) is found wherever it is moved.
c.CourseDirectory.root = str(Path(__file__).resolve().parent)

# Student notebooks show a stub that fails loudly until the TODO is done.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Seconds a cell may run while autograding; labs solve small models, so this is generous.
c.Execute.timeout = 120
# Keep the kernel's own start-up warnings (not cell output) out of the grading log.
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR", "--HistoryManager.hist_file=:memory:"]
# nbclient can sleep through a cell's reply until the timeout when the cell clears an
# ipywidgets Output widget (jupyter/nbclient#312); this manager's client polls in slices.
c.Execute.kernel_manager_class = "mdplab.course.kernel_client.WakefulKernelManager"

# Grading runs student code in a sandboxed kernel and the test cells in the grader's own
# process (see mdplab.grading); the rest of nbgrader's autograde pipeline is unchanged.
c.Autograde.autograde_preprocessors = [
    "mdplab.grading.executor.SandboxedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.SandboxedExecute.cell_timeout = 120
c.SandboxedExecute.notebook_timeout = 900
