"""Hidden checks: what each lab's hidden tests call in the instructor's environment.

A check takes the student's function, runs it on instances the student has not seen and
raises ``AssertionError`` with a message in plain words on the first failure. Messages
describe the mistake and the kind of instance; they never reveal the expected numbers,
because they end up in the student's feedback.
"""

from mdplab.checks.common import HiddenCheckFailure, call_student

__all__ = ["HiddenCheckFailure", "call_student"]
