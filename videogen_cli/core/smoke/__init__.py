"""`videogen smoke`: the backend plan's test list as named checks, for CI.

- ``checks``: the checks and one run (`SmokeSession`);
- ``targets``: the core directly (`DirectTarget`), and the shared vocabulary;
- ``http``: any implementation of the app's endpoints (`HttpTarget`);
- ``results`` and ``junit``: what a run found, and its JUnit XML.
"""

# The defaults of `videogen smoke` (its options read them without importing the checks):
# each check's deadline, and the waits between the polls of a check's job.
DEFAULT_CHECK_TIMEOUT = 180.0
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_POLL_MAX_INTERVAL = 5.0
