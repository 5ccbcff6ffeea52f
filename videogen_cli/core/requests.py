"""Turning what a user typed into one canonical, validated, priced request.

Validation happens here, before any charge (README "Money rules"). The canonical form
(`CanonicalRequest`) is what the idempotency fingerprint covers and what `replay-key`
sends again, so two spellings of one request (`--duration 4` and `--duration 4s` for
veo) are the same request, and every default is written out. Its JSON form is pinned by
tests/test_requests.py::test_the_fingerprint_of_a_known_request_never_changes: keys
stored by earlier versions must still replay.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from videogen_cli.domain import JsonDict, Model, SettingSpec
from videogen_cli.errors import NotFoundError, RefusedError, UsageError
from videogen_cli.ports import KEY_MAX_LENGTH, JobStore

MAX_PROMPT_CHARS = 5000
MIN_KEY_CHARS = 8


@dataclass(frozen=True)
class CanonicalRequest:
    """One generate request, validated, with every setting the model accepts written out."""

    user_id: str  # a canonical lower-case UUID
    model: str  # the model's slug (never its id)
    prompt: str  # stripped
    image_url: str | None
    settings: JsonDict  # every setting of the model, typed as fal wants it (see _coerce)

    def to_json(self) -> JsonDict:
        """The stored form (an idempotency record's `request`) and what `fingerprint`
        hashes: exactly these five keys."""
        return {
            "user_id": self.user_id,
            "model": self.model,
            "prompt": self.prompt,
            "image_url": self.image_url,
            "settings": dict(self.settings),
        }

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> CanonicalRequest:
        """A stored request (an idempotency record's), as `replay-key` sends it again."""
        return cls(
            user_id=stored["user_id"],
            model=stored["model"],
            prompt=stored["prompt"],
            image_url=stored.get("image_url"),
            settings=dict(stored.get("settings") or {}),
        )


@dataclass(frozen=True)
class PreparedRequest:
    model: Model
    request: CanonicalRequest
    fingerprint: str
    cost: int

    def fal_arguments(self) -> dict[str, object]:
        """The body fal receives: the prompt, the image when any, and the settings."""
        args: dict[str, object] = {"prompt": self.request.prompt}
        if self.request.image_url:
            args["image_url"] = self.request.image_url
        args.update(self.request.settings)
        return args


def prepare_request(
    store: JobStore,
    *,
    user_id: str,
    model_ref: str,
    prompt: str,
    image_url: str | None,
    settings: dict[str, Any],
) -> PreparedRequest:
    """Validate and normalise; raises UsageError (2), NotFoundError (3), RefusedError (4)."""
    user_id = check_uuid(user_id, "user id")
    model = store.get_model(model_ref)
    if model is None:
        raise NotFoundError(
            f"model {model_ref!r} not found",
            code="model_not_found",
            hint="list the models with: videogen models",
        )
    if not model.active:
        raise RefusedError(
            f"model {model.slug} is not active", code="model_inactive", hint="choose another model"
        )
    prompt = prompt.strip()
    if not prompt:
        raise UsageError("the prompt is empty", hint='pass --prompt "what the video shows"')
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UsageError(f"the prompt is longer than {MAX_PROMPT_CHARS} characters")
    image_url = (image_url or "").strip() or None
    if model.requires_image and not image_url:
        raise UsageError(
            f"model {model.slug} turns an image into a video and needs --image-url",
            hint="pass --image-url https://… (the first frame)",
        )
    if image_url and not model.requires_image:
        raise UsageError(
            f"model {model.slug} is text-to-video and takes no image",
            hint="drop --image-url, or choose an image-to-video model (videogen models)",
        )
    if image_url and not image_url.startswith(("https://", "http://", "data:image/")):
        raise UsageError(
            f"--image-url must be an http(s) URL or a data:image URI, not {image_url[:60]!r}"
        )
    normalised = normalise_settings(model, settings)
    request = CanonicalRequest(user_id, model.slug, prompt, image_url, normalised)
    return PreparedRequest(
        model=model,
        request=request,
        fingerprint=fingerprint(request.to_json()),
        cost=model.credits_per_second * duration_seconds(normalised.get("duration")),
    )


def normalise_settings(model: Model, given: dict[str, Any]) -> JsonDict:
    """Every setting the model accepts, with defaults filled in and types as fal wants."""
    unknown = sorted(k for k, v in given.items() if v is not None and k not in model.settings)
    if unknown:
        raise UsageError(
            f"model {model.slug} does not accept {', '.join(unknown)}",
            hint=f"it accepts: {', '.join(sorted(model.settings))}",
        )
    out: JsonDict = {}
    for name, spec in sorted(model.settings.items()):
        value = given.get(name)
        out[name] = spec.default if value is None else _coerce(model, name, spec, value)
    return out


def _coerce(model: Model, name: str, spec: SettingSpec, value: Any) -> Any:
    text = str(value).strip()
    candidate: Any
    if spec.type == "integer":
        try:
            candidate = int(text.removesuffix("s"))
        except ValueError:
            candidate = text
    elif spec.type == "boolean":
        candidate = {"true": True, "false": False}.get(text.lower(), text)
    elif name == "duration" and text.isdigit():
        candidate = text + "s"  # veo spells durations "4s"; accept the bare number too
    else:
        candidate = text
    if spec.allowed is not None and candidate not in spec.allowed:
        allowed = ", ".join(str(a) for a in spec.allowed)
        raise UsageError(
            f"{name.replace('_', '-')} {text!r} is not allowed for {model.slug}",
            hint=f"choose one of: {allowed}",
        )
    return candidate


def duration_seconds(duration: Any) -> int:
    """4 or "4s" → 4: the unit the price is per."""
    if duration is None:
        raise UsageError("the model has no duration setting, so no price can be computed")
    return int(str(duration).removesuffix("s"))


def fingerprint(request: JsonDict) -> str:
    """SHA-256 of the canonical JSON (`CanonicalRequest.to_json`): the same request always
    gives the same print, whatever the order of its keys."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored (None when it can): a lone surrogate is not UTF-8 (it
    reaches us from argv's undecodable bytes, or a JSON `\\ud800` escape), and Postgres
    text cannot hold NUL. Checked before anything moves, by the CLI and by `serve`."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid text: a byte that is not UTF-8 at character {exc.start + 1}"
    if "\x00" in text:
        return "is not valid text: it contains a NUL character"
    return None


def check_uuid(value: str, what: str) -> str:
    """A canonical lower-case UUID, or UsageError (exit 2) for a malformed id."""
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        # Short prefixes are not looked up (README "Commands": whole ids everywhere).
        hint = (
            "give the whole job id (36 characters), as generate and videogen jobs print it"
            if what == "job id"
            else None
        )
        raise UsageError(f"{what} {value!r} is not a UUID", hint=hint) from None


def check_idempotency_key(key: str) -> str:
    key = key.strip()
    if not MIN_KEY_CHARS <= len(key) <= KEY_MAX_LENGTH or not key.isprintable() or " " in key:
        raise UsageError(
            f"idempotency key must be {MIN_KEY_CHARS}–{KEY_MAX_LENGTH} printable characters "
            "without spaces",
            hint="omit --idempotency-key to get a new UUID",
        )
    return key
