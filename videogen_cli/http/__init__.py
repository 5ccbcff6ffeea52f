"""`videogen serve`: the app's endpoints over HTTP (FastAPI, uvicorn, PyJWT).

Imported only by the `serve` and `token` commands, so the other commands never load a
web framework (tests/test_processes.py checks it).
"""
