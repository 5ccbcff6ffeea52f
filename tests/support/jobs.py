"""Jobs made straight through a store, for tests that need a state `generate` leaves only
when something goes wrong (a process that died after the charge, another provider's job)."""

from __future__ import annotations

from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.core.requests import prepare_request
from videogen_cli.domain import Job, NewJob
from videogen_cli.ports import JobStore


def charged_job(
    store: JobStore,
    key: str,
    *,
    user_id: str = DEMO_USER_ID,
    model: str = "veo3.1",
    duration: str = "4s",
) -> Job:
    """A job charged exactly as `generate` charges it, and never submitted: what a process
    that stopped between the charge and the submit leaves behind."""
    p = prepare_request(
        store,
        user_id=user_id,
        model_ref=model,
        prompt=f"a boat {key}",
        image_url=None,
        settings={"duration": duration},
    )
    new = NewJob(
        user_id,
        key,
        p.fingerprint,
        p.model.slug,
        p.request.prompt,
        None,
        p.request.settings,
        p.cost,
        p.request.to_json(),
    )
    return store.create_job(new).job
