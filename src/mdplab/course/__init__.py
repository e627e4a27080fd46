"""Course tooling: from one text source per lab to the nbgrader master, the student
notebook and the worked solution, and the grading of submissions with nbgrader.

The modules, in the order a lab flows through them:

- :mod:`~mdplab.course.layout`: where everything lives in the repository;
- :mod:`~mdplab.course.authoring`: the jupytext source of a lab into the nbgrader master;
- :mod:`~mdplab.course.derive`: the master into the solution notebook, and answers into
  a student notebook (for sample submissions and the solution catalogues);
- :mod:`~mdplab.course.nbgrader_course`: nbgrader's own API on a working course folder;
- :mod:`~mdplab.course.execute`: running notebooks with nbclient;
- :mod:`~mdplab.course.build`: the one command that writes every generated file, and
  the staleness check;
- :mod:`~mdplab.course.samples` and :mod:`~mdplab.course.demo`: the bundled sample
  submissions and the main job that grades them.
"""
