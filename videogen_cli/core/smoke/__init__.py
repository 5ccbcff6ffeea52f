"""`videogen smoke`: the backend plan's test list as named checks, for CI.

- ``checks``: the checks and one run (`SmokeSession`);
- ``targets``: the core directly (`DirectTarget`), and the shared vocabulary;
- ``http``: any implementation of the app's endpoints (`HttpTarget`);
- ``results`` and ``junit``: what a run found, and its JUnit XML.
"""
