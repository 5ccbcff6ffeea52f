"""The seed model catalog and demo user (README "The sandbox").

One source for the sandbox seed; the Postgres migration seeds the same rows and a
test checks that the two agree. Settings mirror what each fal endpoint accepts
(``https://fal.ai/models/<endpoint_id>/llms.txt``): note the integer sora durations and the string
veo durations.
"""

from __future__ import annotations

from videogen_cli.domain import Model, SettingSpec

DEMO_USER_ID = "00000000-0000-4000-a000-000000000001"
DEMO_USER_CREDITS = 100

_SORA_DURATIONS = (4, 8, 12)  # the set both fal pages agree on
_VEO_DURATIONS = ("4s", "6s", "8s")

SEED_MODELS: tuple[Model, ...] = (
    Model(
        id="6f1c2a10-0000-4000-a000-000000000001",
        slug="sora-2-i2v",
        name="Sora 2 image-to-video",
        endpoint_id="fal-ai/sora-2/image-to-video",
        credits_per_second=1,
        requires_image=True,
        settings={
            "duration": SettingSpec("integer", _SORA_DURATIONS, 4),
            "resolution": SettingSpec("string", ("auto", "720p"), "auto"),
            "aspect_ratio": SettingSpec("string", ("auto", "9:16", "16:9"), "auto"),
        },
    ),
    Model(
        id="6f1c2a10-0000-4000-a000-000000000002",
        slug="sora-2-t2v",
        name="Sora 2 text-to-video",
        endpoint_id="fal-ai/sora-2/text-to-video",
        credits_per_second=1,
        requires_image=False,
        settings={
            "duration": SettingSpec("integer", _SORA_DURATIONS, 4),
            "resolution": SettingSpec("string", ("720p",), "720p"),
            "aspect_ratio": SettingSpec("string", ("9:16", "16:9"), "16:9"),
        },
    ),
    Model(
        id="6f1c2a10-0000-4000-a000-000000000003",
        slug="veo3.1",
        name="Veo 3.1 text-to-video",
        endpoint_id="fal-ai/veo3.1",
        credits_per_second=4,
        requires_image=False,
        settings={
            "duration": SettingSpec("string", _VEO_DURATIONS, "8s"),
            "resolution": SettingSpec("string", ("720p", "1080p", "4k"), "720p"),
            "aspect_ratio": SettingSpec("string", ("16:9", "9:16"), "16:9"),
        },
    ),
    Model(
        id="6f1c2a10-0000-4000-a000-000000000004",
        slug="veo3.1-i2v",
        name="Veo 3.1 image-to-video",
        endpoint_id="fal-ai/veo3.1/image-to-video",
        credits_per_second=4,
        requires_image=True,
        settings={
            "duration": SettingSpec("string", _VEO_DURATIONS, "8s"),
            "resolution": SettingSpec("string", ("720p", "1080p", "4k"), "720p"),
            "aspect_ratio": SettingSpec("string", ("auto", "16:9", "9:16"), "auto"),
        },
    ),
)

DEFAULT_MODEL = "veo3.1"  # text-to-video: works with a prompt alone


def settings_to_json(settings: dict[str, SettingSpec]) -> dict[str, dict[str, object]]:
    """The JSON form stored in `models.allowed_settings`."""
    return {
        name: {
            "type": spec.type,
            "allowed": list(spec.allowed) if spec.allowed is not None else None,
            "default": spec.default,
        }
        for name, spec in settings.items()
    }


def settings_from_json(raw: dict[str, dict[str, object]]) -> dict[str, SettingSpec]:
    out: dict[str, SettingSpec] = {}
    for name, spec in raw.items():
        allowed = spec.get("allowed")
        out[name] = SettingSpec(
            type=str(spec["type"]),
            allowed=tuple(allowed) if isinstance(allowed, list) else None,
            default=spec.get("default"),
        )
    return out
