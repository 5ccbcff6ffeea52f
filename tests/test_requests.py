"""Validation, normalisation, pricing and fingerprints: all before any charge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videogen_cli.catalog import DEMO_USER_ID
from videogen_cli.core.requests import (
    CanonicalRequest,
    PreparedRequest,
    check_idempotency_key,
    check_uuid,
    fingerprint,
    prepare_request,
)
from videogen_cli.errors import NotFoundError, UsageError
from videogen_cli.storage.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "db.sqlite3")


def prep(store: SqliteStore, model: str = "veo3.1", **kw: object) -> PreparedRequest:
    settings: dict[str, object] = {
        k: kw.pop(k) for k in ("duration", "resolution", "aspect_ratio") if k in kw
    }
    return prepare_request(
        store,
        user_id=str(kw.pop("user_id", DEMO_USER_ID)),
        model_ref=model,
        prompt=str(kw.pop("prompt", "a boat")),
        image_url=str(kw["image_url"]) if "image_url" in kw else None,
        settings=settings,
    )


def test_defaults_are_written_out_and_priced(store: SqliteStore) -> None:
    p = prep(store)
    assert p.request.to_json() == {
        "user_id": DEMO_USER_ID,
        "model": "veo3.1",
        "prompt": "a boat",
        "image_url": None,
        "settings": {"aspect_ratio": "16:9", "duration": "8s", "resolution": "720p"},
    }
    assert p.cost == 32  # 4 credits/s × 8 s


def test_veo_duration_accepts_bare_seconds_and_fingerprints_alike(store: SqliteStore) -> None:
    a, b = prep(store, duration="4"), prep(store, duration="4s")
    assert a.request.settings["duration"] == "4s"
    assert a.fingerprint == b.fingerprint
    assert a.cost == 16


def test_sora_duration_is_an_integer_for_fal(store: SqliteStore) -> None:
    p = prep(store, "sora-2-i2v", duration="8s", image_url="https://example.com/a.png")
    assert p.request.settings["duration"] == 8
    assert p.fal_arguments() == {
        "prompt": "a boat",
        "image_url": "https://example.com/a.png",
        "aspect_ratio": "auto",
        "duration": 8,
        "resolution": "auto",
    }
    assert p.cost == 8


def test_model_by_id_normalises_to_slug(store: SqliteStore) -> None:
    p = prep(store, "6f1c2a10-0000-4000-a000-000000000003")
    assert p.request.model == "veo3.1"


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        ("veo3.1", {"duration": "5s"}, "duration '5s' is not allowed for veo3.1"),
        ("veo3.1", {"resolution": "8k"}, "resolution '8k' is not allowed for veo3.1"),
        ("sora-2-i2v", {}, "needs --image-url"),
        ("veo3.1", {"image_url": "https://x/y.png"}, "takes no image"),
        ("veo3.1-i2v", {"image_url": "ftp://x/y.png"}, "must be an http(s) URL"),
        ("veo3.1", {"prompt": "   "}, "the prompt is empty"),
        ("veo3.1", {"user_id": "not-a-uuid"}, "is not a UUID"),
    ],
)
def test_bad_input_is_a_usage_error(
    store: SqliteStore, model: str, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prep(store, model, **kwargs)


def test_unknown_model_is_not_found(store: SqliteStore) -> None:
    with pytest.raises(NotFoundError) as err:
        prep(store, "sora-9")
    assert err.value.code == "model_not_found"


def test_fingerprint_is_stable_and_covers_the_user() -> None:
    base: dict[str, object] = {
        "user_id": "a", "model": "m", "prompt": "p", "image_url": None, "settings": {},
    }  # fmt: skip
    assert fingerprint(base) == fingerprint(dict(reversed(list(base.items()))))
    assert fingerprint(base) != fingerprint({**base, "user_id": "b"})


def test_ids_and_keys() -> None:
    assert check_uuid(" 00000000-0000-4000-A000-000000000001 ", "x") == DEMO_USER_ID
    assert check_idempotency_key("order-1234") == "order-1234"
    for bad in ("short", "has space here", "x" * 256):
        with pytest.raises(UsageError):
            check_idempotency_key(bad)


def test_the_fingerprint_of_a_known_request_never_changes(store: SqliteStore) -> None:
    """Idempotency keys stored by earlier versions must still replay: the canonical JSON
    of a fixed request, and so its fingerprint, are the ones the dict-based canonical
    request of earlier versions gave (computed with that code, pinned here)."""
    veo = prep(store, duration="4", prompt='  a paper boat on a pond — at dawn ☀ "quoted"  ')
    assert veo.fingerprint == "fe7a022c29a75518bd5976d7706a0427215c01ca85599447c6283b8a110de412"
    assert json.dumps(veo.request.to_json(), ensure_ascii=False) == (
        '{"user_id": "00000000-0000-4000-a000-000000000001", "model": "veo3.1", '
        '"prompt": "a paper boat on a pond — at dawn ☀ \\"quoted\\"", "image_url": null, '
        '"settings": {"aspect_ratio": "16:9", "duration": "4s", "resolution": "720p"}}'
    )
    sora = prep(store, "sora-2-i2v", duration="8s", image_url="https://example.com/a.png")
    assert sora.fingerprint == "183eb0713da9084f4999666d2b09b3254c48aa4d40b1c8215d8e810424fa3e94"
    assert sora.request.to_json()["settings"] == {
        "aspect_ratio": "auto", "duration": 8, "resolution": "auto",
    }  # fmt: skip
    # A stored request (keys in any order, as a store gives it back) reads back as the
    # same request, with the same print: what `replay-key` sends again.
    for p in (veo, sora):
        stored = json.loads(json.dumps(p.request.to_json(), sort_keys=True))
        again = CanonicalRequest.from_json(stored)
        assert again == p.request
        assert fingerprint(again.to_json()) == p.fingerprint
