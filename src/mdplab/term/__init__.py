"""A term of MDP Labs: one class course for every lab, and grades back to the LMS.

- :mod:`~mdplab.term.classroom`: the class folder (``mdplab class init``), its settings
  and its one nbgrader gradebook;
- :mod:`~mdplab.term.roster`: who is enrolled, read from a Canvas gradebook export;
- :mod:`~mdplab.term.late`: due dates and late penalties through nbgrader's own plugin;
- :mod:`~mdplab.term.export`: final grades per lab and for the term, and Canvas's import
  file (``mdplab export``);
- :mod:`~mdplab.term.formgrader`: nbgrader's formgrader on the class (``mdplab formgrader``).

Grading itself is :mod:`mdplab.grading`'s: ``mdplab grade LAB FILES --class DIR`` grades
into the class instead of into a course of its own.
"""
