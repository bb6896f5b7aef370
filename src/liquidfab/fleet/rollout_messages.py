"""The fleet's rollout message types: rollout, rollout-control, group and consent.

``org.liquidfab.fleet.rollout`` and ``rollout-control`` are signed by the product's
manufacturer or an operator (see ``rollouts``). ``org.liquidfab.fleet.group`` saves a
named device query the same signers may then name in a rollout's filter.
``org.liquidfab.fleet.consent`` is the owner's yes to a soft assignment: the node signs
the assignment again with ``consent`` true and a higher counter, and the device, which
holds the download verified, installs it in its window.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from liquidfab.db import participants as directory
from liquidfab.errors import Refused
from liquidfab.fleet import director, groups, registry, rollouts
from liquidfab.fleet.windows import window_problem
from liquidfab.product import catalog
from liquidfab.protocol.registry import Context, MessageType, Registry

__all__ = [
    "CONSENT",
    "GROUP",
    "ROLLOUT",
    "ROLLOUT_CONTROL",
    "Consent",
    "Group",
    "Rollout",
    "RolloutControl",
    "Window",
    "add_rollout_types",
]

ROLLOUT = "org.liquidfab.fleet.rollout"
ROLLOUT_CONTROL = "org.liquidfab.fleet.rollout-control"
GROUP = "org.liquidfab.fleet.group"
CONSENT = "org.liquidfab.fleet.consent"
AttributeValue = str | int | float | bool
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"


class Window(BaseModel):
    """A maintenance window: installs wait for it (see ``windows``)."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="Local time of day it opens, HH:MM.")
    minutes: int = Field(ge=1, le=1440)
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = Field(
        None, min_length=1, max_length=7, description="Absent: every day."
    )
    timezone: str = Field("UTC", max_length=64)

    @model_validator(mode="after")
    def _valid(self) -> Window:
        problem = window_problem(self.document())
        if problem is not None:
            raise ValueError(problem)
        return self

    def document(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class RolloutTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    length: int = Field(gt=0, le=512 * 1024 * 1024)
    custom: dict[str, str] = Field(max_length=20)


class RolloutFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, max_length=200)
    version: str | None = Field(None, max_length=100)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, max_length=20)
    group: str | None = Field(None, max_length=100, description="A named group to narrow.")


class Rollout(BaseModel):
    """Payload of rollout: a target for the devices a filter selects, wave by wave."""

    model_config = ConfigDict(extra="forbid")

    rollout: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)
    target: RolloutTarget
    filter: RolloutFilter
    waves: list[int] = Field(
        min_length=1, max_length=20, description="Cumulative percentages, rising, ending at 100."
    )
    success_threshold: float = Field(0.9, ge=0, le=1)
    error_threshold: float = Field(0.1, ge=0, le=1)
    min_sample: int = Field(10, ge=1, le=1_000_000)
    rate_per_minute: int = Field(0, ge=0, le=1_000_000, description="0: no cap.")
    mode: Literal["forced", "soft", "download-only"] = "forced"
    window: Window | None = None

    @model_validator(mode="after")
    def _rising(self) -> Rollout:
        w = self.waves
        if any(not 0 < p <= 100 for p in w) or any(b <= a for a, b in pairwise(w)) or w[-1] != 100:
            raise ValueError("waves are rising percentages in (0, 100] ending at 100")
        return self


class RolloutControl(BaseModel):
    """Payload of rollout-control."""

    model_config = ConfigDict(extra="forbid")

    rollout: str = Field(min_length=1, max_length=100)
    action: Literal["pause", "resume", "abort"]


class Group(BaseModel):
    """Payload of group: a named device query (created, or replaced by its creator)."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(pattern=_ID)
    product: str = Field(min_length=1, max_length=200)
    version: str | None = Field(None, max_length=100)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, max_length=20)

    @field_validator("attributes")
    @classmethod
    def _names(cls, value: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        if any(not 0 < len(k) <= 64 for k in value):
            raise ValueError("an attribute name has 1 to 64 characters")
        return value


class Consent(BaseModel):
    """Payload of consent: the owner agrees to install a soft assignment."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(min_length=1, max_length=200)
    counter: int = Field(ge=1, description="The assignment consented to, by its counter.")


def _may_manage(ctx: Context, product: str) -> None:
    owner = catalog.get_product(ctx.conn, product)
    is_authority = directory.is_authority(ctx.conn, ctx.signer)
    if owner is None:
        raise Refused("not-found", f"this node holds no product {product}.", 404)
    if ctx.signer != owner["manufacturer"] and not is_authority:
        raise Refused(
            "unauthorized",
            f"the manufacturer of {product} or an operator manages its rollouts and groups.",
            403,
        )


def _rollout(ctx: Context) -> dict[str, Any]:
    p: Rollout = ctx.payload
    _may_manage(ctx, p.filter.product)
    missing = {"product", "hardware", "version", "kind"} - set(p.target.custom)
    if missing:
        raise Refused("malformed", f"target.custom lacks {', '.join(sorted(missing))}.", 400)
    if p.target.custom["product"] != p.filter.product:
        raise Refused("incompatible", "the target is for another product than the filter.", 422)
    if rollouts.get_rollout(ctx.conn, p.rollout) is not None:
        raise Refused("conflict", f"rollout id {p.rollout} is taken.", 409)
    filter_ = p.filter.model_dump(exclude_none=True)
    groups.effective_query(ctx.conn, filter_)  # refuses an unknown or contradicting group
    rollouts.insert_rollout(
        ctx.conn,
        {
            "id": p.rollout,
            "creator": ctx.signer,
            "name": p.name,
            "target": p.target.model_dump(),
            "filter": filter_,
            "waves": p.waves,
            "success_threshold": p.success_threshold,
            "error_threshold": p.error_threshold,
            "min_sample": p.min_sample,
            "rate_per_minute": p.rate_per_minute,
            "mode": p.mode,
            "window": p.window.document() if p.window else None,
            "state": "running",
            "wave": 0,
            "reason": None,
            "created_us": ctx.now_us,
            "updated_us": ctx.now_us,
        },
    )
    after = rollouts.advance(ctx, p.rollout, recount=True)
    assert after is not None
    return {"rollout": p.rollout, "state": after["state"], "wave": after["wave"],
            "population": after["population"],
            "progress": rollouts.progress(ctx.conn, p.rollout)}  # fmt: skip


_CONTROL = {"pause": ({"running"}, "paused"), "resume": ({"paused"}, "running"),
            "abort": ({"running", "paused"}, "aborted")}  # fmt: skip


def _rollout_control(ctx: Context) -> dict[str, Any]:
    p: RolloutControl = ctx.payload
    row = rollouts.get_rollout(ctx.conn, p.rollout)
    if row is None:
        raise Refused("not-found", f"no rollout {p.rollout}.", 404)
    _may_manage(ctx, row["filter"]["product"])
    allowed, target = _CONTROL[p.action]
    if row["state"] not in allowed:
        raise Refused(
            "transition-invalid", f"rollout {p.rollout} is {row['state']}; it cannot {p.action}.",
            409, extra={"state": row["state"]},
        )  # fmt: skip
    accepted = {"accepted_wave": row["wave"]} if p.action == "resume" else {}
    rollouts.set_state(ctx.conn, p.rollout, ctx.now_us, state=target, reason=None, **accepted)
    after = rollouts.advance(ctx, p.rollout, recount=True) if target == "running" else None
    state = after["state"] if after is not None else target
    return {"rollout": p.rollout, "state": state, "previous": row["state"]}


def _group(ctx: Context) -> dict[str, Any]:
    p: Group = ctx.payload
    _may_manage(ctx, p.product)
    current = groups.get_group(ctx.conn, p.group)
    if current is not None and current["creator"] != ctx.signer:
        raise Refused("conflict", f"group {p.group} belongs to {current['creator']}.", 409)
    if current is not None and current["product_id"] != p.product:
        raise Refused("conflict", f"group {p.group} holds {current['product_id']}.", 409)
    query = {"version": p.version, "attributes": {k: str(v) for k, v in p.attributes.items()}}
    created = groups.put_group(
        ctx.conn,
        {"name": p.group, "product_id": p.product, "query": query, "creator": ctx.signer,
         "created_us": ctx.now_us, "updated_us": ctx.now_us},
    )  # fmt: skip
    members = registry.count_matching(ctx.conn, product=p.product, **query)
    return {"group": p.group, "created": created, "members": members}


def _consent(ctx: Context) -> dict[str, Any]:
    p: Consent = ctx.payload
    device = registry.get_device(ctx.conn, p.device)
    if device is None:
        raise Refused("not-found", f"no device {p.device}.", 404)
    if ctx.signer != device["owner"]:
        raise Refused("unauthorized", "only the device's owner consents to its updates.", 403)
    current = director.get_assignment(ctx.conn, p.device)
    if current is None or int(current["counter"]) != p.counter:
        now = None if current is None else int(current["counter"])
        raise Refused(
            "stale-version", f"the device's assignment is {now}, not {p.counter}.", 409,
            extra={"current": now},
        )  # fmt: skip
    if current["mode"] != "soft":
        raise Refused("transition-invalid", f"assignment {p.counter} asks no consent.", 409)
    if current["consent_by"] is not None:
        raise Refused("transition-invalid", f"assignment {p.counter} has consent already.", 409)
    row = {k: current[k] for k in ("device", "target", "sha256", "length", "custom",
                                   "assigned_by", "mode", "window")}  # fmt: skip
    counter = director.store_assignment(
        ctx.conn,
        {**row, "assigned_us": ctx.now_us,
         "consent_by": f"{ctx.envelope.source} {ctx.envelope.id}"},
    )  # fmt: skip
    ctx.notices.append(("device", p.device))
    return {"device": p.device, "target": current["target"], "counter": counter}


def add_rollout_types(registry_: Registry) -> None:
    """Register the rollout message types in ``registry_``."""
    for type_, payload, handler, summary in (
        (ROLLOUT, Rollout, _rollout, "Start a rollout: a target for the devices a filter "
         "selects, in waves, with success and error thresholds, a rate cap, a mode and a "
         "maintenance window."),
        (ROLLOUT_CONTROL, RolloutControl, _rollout_control, "Pause, resume or abort a rollout."),
        (GROUP, Group, _group, "Save a named device query (product, version, attributes) "
         "that rollouts and searches may name."),
        (CONSENT, Consent, _consent, "The owner consents to install a soft assignment."),
    ):  # fmt: skip
        registry_.add(
            MessageType(
                type=type_, payload=payload, handler=handler, summary=summary,
                settlement="forbidden",
            )
        )  # fmt: skip
