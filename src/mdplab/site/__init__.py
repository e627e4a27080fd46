"""The course's static self-study website (``mdplab site``, ``make site``).

- :mod:`~mdplab.site.build`: stages the executed worked solutions, the student notebooks
  and MathJax next to the Sphinx project in ``site/`` and runs Sphinx (myst-nb) on it;
- :mod:`~mdplab.site.glossary_links`: the Sphinx extension that links the first use of
  each glossary entry on a lab page to the entry.
"""
