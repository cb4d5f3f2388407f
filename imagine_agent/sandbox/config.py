"""Sandbox settings and scripted faults.

A ``Fault`` describes one misbehaviour of the real world (a 5xx after the money moved, a dropped
connection, a price change…) that the client must survive. Faults are armed in ``SandboxConfig``,
through ``POST /_admin/faults`` or from a JSON/TOML file (``load_faults``), and each one applies to the
next ``times`` matching requests (``-1``: forever).

Kinds (default paths; params with defaults). On create, faults act only on requests carrying X-PAYMENT:

- ``error_before_settle`` (create): HTML 500, nothing charged.
- ``error_after_settle`` (create): settle + create the task, then HTML 500: money taken, response lost.
- ``drop_after_payment`` (create; ``settle=True``): settle (or not), then break the connection mid-body;
  the client sees ``httpx.RemoteProtocolError`` (a transport error) over uvicorn and over ASGITransport.
- ``payment_required_after_settle`` (create; ``error="unexpected_settle_error"``): settle, then 402 anyway.
- ``settlement_pending`` (create): settle, then 402 with a receipt saying ``settlement_pending`` and the
  transaction hash (the x402 v2 answer when a broadcast transaction is not confirmed yet).
- ``price_change`` (create; ``amount=500000``): on the next paid create, every price rises by ``amount``
  for good, before verification: a payment signed for the old price is rejected (authorization_value).
- ``delay`` (any path; ``seconds=1.0``, ``paid_only=False``): sleep before answering (after settling, on a
  paid create). ``paid_only``: on create, delay only requests carrying X-PAYMENT (a timeout *after* payment;
  without it the unpaid quote request takes the delay first).
- ``malformed_json`` (create, status): the normal status code with a truncated JSON body.
- ``wrong_content_type`` (create, status; download allowed): the right body served as text/html.
- ``status_502_html`` (status; create, download allowed): a proxy's HTML 502, nothing charged.
- ``not_found`` (status; download allowed): 404 ``{"status": "not_found"}`` for an existing task.
- ``huge_download`` (download; ``bytes=None``, ``content_length=True``): an endless-looking body of zeros,
  generated lazily; ``bytes=None`` is 2 GiB over a real server, 64 MiB in-process (httpx's ASGITransport
  buffers whole bodies in memory, so keep ``bytes`` small there).
- ``status_after_payment`` (create; ``status=409``, ``settle=True``, ``location=""``): settle (or not), then
  answer that status instead of 202: 204 with no body, a 3xx with ``Location`` (default: the same path on
  another origin, ``http://127.0.0.2:<port>``), any 4xx with a JSON error.
- ``oversized_answer`` (create; ``bytes=2097152``, ``settle=True``): a 202 whose JSON body is padded past the
  client's 1 MiB limit.
- ``compressed_bomb`` (create; ``encoding="gzip"``, ``bytes=67108864``, ``settle=True``): a 202 whose body is
  a small ``gzip`` or ``zstd`` stream that decompresses to ``bytes`` zeros.
- Task traits, bound to the next ``times`` created tasks (or to ``task_id`` at once): ``fail`` (``error``,
  ``at=1.0``: the fraction of the job's time at which it fails), ``status_flapping`` (processing reads
  alternate with queued), ``progress_backwards`` (one processing read reports half the previous progress),
  ``unreachable_video`` (the completed result's video URL points at a closed loopback port).
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import from_json

from ..x402 import NETWORKS

__all__ = [
    "DEFAULT_MODELS",
    "FAULT_PARAMS",
    "IMAGINE_PAY_TO",
    "USDC_BASE",
    "Fault",
    "FaultKind",
    "ModelPrice",
    "PathKind",
    "SandboxConfig",
    "load_faults",
]

USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
IMAGINE_PAY_TO = "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96"

PathKind = Literal["create", "status", "download"]
FaultKind = Literal[
    "error_before_settle",
    "error_after_settle",
    "drop_after_payment",
    "delay",
    "payment_required_after_settle",
    "price_change",
    "malformed_json",
    "wrong_content_type",
    "status_flapping",
    "fail",
    "not_found",
    "progress_backwards",
    "unreachable_video",
    "huge_download",
    "status_502_html",
    "status_after_payment",
    "oversized_answer",
    "compressed_bomb",
    "settlement_pending",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

# Faults that change how a task behaves: bound to the next ``times`` tasks created (or to ``task_id``).
TASK_TRAITS = frozenset({"fail", "status_flapping", "progress_backwards", "unreachable_video"})

_ALL: frozenset[str] = frozenset({"create", "status", "download"})
# kind -> (paths it may match, paths it matches when ``match`` is not given)
FAULT_PATHS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "error_before_settle": (frozenset({"create"}), frozenset({"create"})),
    "error_after_settle": (frozenset({"create"}), frozenset({"create"})),
    "drop_after_payment": (frozenset({"create"}), frozenset({"create"})),
    "payment_required_after_settle": (frozenset({"create"}), frozenset({"create"})),
    "settlement_pending": (frozenset({"create"}), frozenset({"create"})),
    "price_change": (frozenset({"create"}), frozenset({"create"})),
    "delay": (_ALL, _ALL),
    "malformed_json": (frozenset({"create", "status"}), frozenset({"create", "status"})),
    "wrong_content_type": (_ALL, frozenset({"create", "status"})),
    "status_502_html": (_ALL, frozenset({"status"})),
    "not_found": (frozenset({"status", "download"}), frozenset({"status"})),
    "huge_download": (frozenset({"download"}), frozenset({"download"})),
    "status_after_payment": (frozenset({"create"}), frozenset({"create"})),
    "oversized_answer": (frozenset({"create"}), frozenset({"create"})),
    "compressed_bomb": (frozenset({"create"}), frozenset({"create"})),
    "fail": (frozenset({"create"}), frozenset({"create"})),
    "status_flapping": (frozenset({"create"}), frozenset({"create"})),
    "progress_backwards": (frozenset({"create"}), frozenset({"create"})),
    "unreachable_video": (frozenset({"create"}), frozenset({"create"})),
}

# kind -> {param: (type, default)}; unknown params are rejected so a typo cannot silently do nothing.
FAULT_PARAMS: dict[str, dict[str, tuple[type, Any]]] = {
    "delay": {"seconds": (float, 1.0), "paid_only": (bool, False)},
    "drop_after_payment": {"settle": (bool, True)},
    "price_change": {"amount": (int, 500_000)},
    "payment_required_after_settle": {"error": (str, "unexpected_settle_error")},
    "fail": {"error": (str, "generation failed: the video model rejected the request"), "at": (float, 1.0)},
    # bytes=None: 2 GiB over a real server, 64 MiB in-process (httpx.ASGITransport buffers whole bodies).
    "huge_download": {"bytes": (int, None), "content_length": (bool, True)},
    "status_after_payment": {"status": (int, 409), "settle": (bool, True), "location": (str, "")},
    "oversized_answer": {"bytes": (int, 2 * 1024 * 1024), "settle": (bool, True)},
    "compressed_bomb": {"encoding": (str, "gzip"), "bytes": (int, 64 * 1024 * 1024), "settle": (bool, True)},
}


def _check_param(kind: str, name: str, value: Any) -> Any:
    spec = FAULT_PARAMS.get(kind, {})
    if name not in spec:
        known = ", ".join(sorted(spec)) or "none"
        raise ValueError(f"fault {kind!r} has no parameter {name!r} (known: {known})")
    typ, _ = spec[name]
    if typ is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if typ in (bool, str) and isinstance(value, typ):
        return value
    raise ValueError(f"fault {kind!r} parameter {name!r} must be {typ.__name__}, not {type(value).__name__}")


class Fault(BaseModel):
    """One scripted misbehaviour, applied to the next ``times`` matching requests (-1: forever).

    ``match`` narrows it to one path kind (create, status, download); ``task_id`` to one task. Task
    traits (fail, status_flapping, progress_backwards, unreachable_video) bind to the next ``times``
    tasks created, or at once to ``task_id`` if given.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    times: int = 1
    match: PathKind | None = None
    task_id: str | None = Field(
        default=None, validation_alias=AliasChoices("task_id", "taskId"), serialization_alias="taskId"
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("times")
    @classmethod
    def _times(cls, v: int) -> int:
        if v != -1 and v < 1:
            raise ValueError("times must be a positive count, or -1 for forever")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Fault:
        allowed, _ = FAULT_PATHS[self.kind]
        if self.match is not None and self.match not in allowed:
            raise ValueError(f"fault {self.kind!r} cannot match {self.match!r} (only {', '.join(sorted(allowed))})")
        checked = {name: _check_param(self.kind, name, value) for name, value in self.params.items()}
        object.__setattr__(self, "params", checked)
        if self.kind == "fail" and not 0.0 <= checked.get("at", 1.0) <= 1.0:
            raise ValueError("fail parameter 'at' is a fraction of the job's duration, from 0 to 1")
        if self.kind == "delay" and not 0 <= checked.get("seconds", 1.0) < math.inf:
            raise ValueError("delay parameter 'seconds' must be a finite number, not negative")
        if self.kind == "huge_download" and checked.get("bytes") is not None and checked["bytes"] < 1:
            raise ValueError("huge_download parameter 'bytes' must be positive")
        status = checked.get("status", 409)
        if self.kind == "status_after_payment" and (not 204 <= status <= 499 or status == 402):
            raise ValueError("status_after_payment parameter 'status' must be 204-499 and not 402")
        if self.kind == "compressed_bomb" and checked.get("encoding", "gzip") not in ("gzip", "zstd"):
            raise ValueError("compressed_bomb parameter 'encoding' must be 'gzip' or 'zstd'")
        if self.kind in ("oversized_answer", "compressed_bomb") and checked.get("bytes", 1) < 1:
            raise ValueError(f"{self.kind} parameter 'bytes' must be positive")
        return self

    @property
    def paths(self) -> frozenset[str]:
        """The path kinds this fault applies to."""
        return frozenset({self.match}) if self.match else FAULT_PATHS[self.kind][1]

    def param(self, name: str) -> Any:
        """A parameter's value, or its documented default."""
        return self.params.get(name, FAULT_PARAMS[self.kind][name][1])


def load_faults(path: str | Path) -> list[Fault]:
    """Read faults from JSON (a list, or ``{"faults": [...]}``) or TOML (``[[faults]]`` tables)."""
    path = Path(path)
    toml = path.suffix.lower() == ".toml"
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = tomllib.loads(text) if toml else from_json(text)  # from_json: depth-capped
    except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError, TOMLDecodeError
        raise ValueError(f"{path}: not a valid {'TOML' if toml else 'JSON'} fault file: {exc}") from None
    if isinstance(data, dict):
        data = data.get("faults", [])
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of faults or an object with a 'faults' list")
    try:
        return [Fault.model_validate(item) for item in data]
    except ValidationError as exc:
        raise ValueError(f"{path}: invalid fault: {exc.errors()[0]['msg']}") from None


class ModelPrice(BaseModel):
    """What one video model costs: atomic USDC per second (None: ``price_per_second``), and its durations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: int | None = Field(default=None, ge=0)
    min_duration: float | None = None
    max_duration: float | None = None


# The models Imagine's newer API sells (prices per 8 s: ~$1.20, $1.20, $6.00, $2.60); the default model
# costs ``price_per_second`` so that 8 s is the spec's 1.00 USDC.
DEFAULT_MODELS: dict[str, ModelPrice] = {
    "xai-grok-imagine": ModelPrice(),
    "sora-2": ModelPrice(per_second=150_000),
    "sora-2-pro": ModelPrice(per_second=750_000),
    "fal-kling-o3": ModelPrice(per_second=325_000, min_duration=3, max_duration=15),
}


class SandboxConfig(BaseModel):
    """How the sandbox prices, times and misbehaves. Money is integer atomic USDC (6 decimals).

    - ``speed``: time scale; a job's duration is divided by it (60: a 2-minute job takes 2 s).
    - ``job_seconds``: real-scale range job durations are drawn from, per task, by an RNG seeded with
      ``seed`` and the task's creation index (same order of creates, same durations).
    - ``price_per_second``: atomic USDC per second of requested video (8 s x 125000 = 1.00 USDC, as the spec).
    - ``network``/``asset``/``pay_to``/``extra``/``max_timeout_seconds``: the 402's payment requirement;
      another network without an explicit ``asset``/``extra`` gets that network's USDC and domain.
    - ``default_balance``: simulated USDC of any payer not in ``balances`` (addresses, any case).
    - ``idempotent_replay``: re-sending an identical, already-settled ``X-PAYMENT`` for the same request
      answers 202 with the original taskId (and receipt) instead of a 402 ``nonce_already_used``. A careful
      x402 server does this: the chain settles a nonce once, so the retry after a lost response is safe,
      and the client gets what it paid for. ``False`` behaves like a naive server.
    - ``video_seconds_cap``: rendered MP4 length cap; by default the MP4 lasts the paid duration.
    - ``models``/``default_model``: the video models sold, each with its price per second; the 402's
      ``videoModel`` enum lists them and each 402 states the price of the body it answers.
    - ``x402``: the protocol version the paywall speaks: ``v1`` (402 body, ``X-PAYMENT``), ``v2``
      (``PAYMENT-REQUIRED`` header, ``PAYMENT-SIGNATURE``, ``payment-identifier``), or ``both``.
    - ``rich_results``: completed results in today's shape (``video`` as a string, media page ``url``,
      ``token`` when autoClank, ``txHash``; progress as ``metadata.percent``) instead of the seed spec's.
    - ``announce_sandbox``: every answer carries ``X-Imagine-Sandbox: 1``, so a client on loopback records
      its payments as sandbox money (separate windows of the same caps). ``False`` stands in for a real server.
    - ``faults``: armed at start (and again by ``reset``). ``clock``: injectable time source.
    - ``rpc_url`` / ``relayer_key``: settle on a real node instead (``imagine-agent devnet`` prints both):
      balances and used nonces are read from the chain, and settling sends ``transferWithAuthorization``
      from the relayer key, so receipts carry real transaction hashes. ``balances``/``default_balance`` then
      play no part, and ``reset`` does not rewind the chain.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    speed: float = Field(default=1.0, gt=0)
    job_seconds: tuple[float, float] = (60.0, 180.0)
    seed: int = 0
    price_per_second: int = Field(default=125_000, ge=0)
    network: str = "base"
    asset: str = USDC_BASE
    pay_to: str = IMAGINE_PAY_TO
    extra: dict[str, str] = Field(default_factory=lambda: {"name": "USD Coin", "version": "2"})
    max_timeout_seconds: int = Field(default=60, ge=1)
    default_balance: int = Field(default=1_000_000_000, ge=0)
    balances: dict[str, int] = Field(default_factory=dict)
    idempotent_replay: bool = True
    video_seconds_cap: float = Field(default=60.0, gt=0, le=60)
    announce_sandbox: bool = True
    models: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_MODELS))
    default_model: str = "xai-grok-imagine"
    x402: Literal["v1", "v2", "both"] = "v1"
    rich_results: bool = False
    faults: list[Fault] = Field(default_factory=list)
    clock: Callable[[], float] = time.time
    rpc_url: str | None = Field(default=None, repr=False)
    relayer_key: SecretStr | None = None

    @field_validator("job_seconds")
    @classmethod
    def _job_seconds(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1]:
            raise ValueError("job_seconds must be (low, high) with 0 <= low <= high")
        return v

    @field_validator("balances")
    @classmethod
    def _balances(cls, v: dict[str, int]) -> dict[str, int]:
        if any(amount < 0 for amount in v.values()):
            raise ValueError("balances must not be negative")
        return {address.lower(): amount for address, amount in v.items()}

    @model_validator(mode="after")
    def _network(self) -> SandboxConfig:
        """Another network without an explicit asset/extra gets that network's USDC and domain."""
        if self.network not in NETWORKS:
            raise ValueError(f"unknown network {self.network!r}; supported: {', '.join(sorted(NETWORKS))}")
        net = NETWORKS[self.network]
        if "asset" not in self.model_fields_set:
            self.asset = net.usdc
        if "extra" not in self.model_fields_set:
            self.extra = {"name": net.usdc_name, "version": net.usdc_version}
        if self.rpc_url is not None and self.relayer_key is None:
            raise ValueError(
                "settling on a chain (rpc_url) needs relayer_key, a funded key that pays the gas "
                "(imagine-agent devnet prints one)"
            )
        if not self.models:
            raise ValueError("the sandbox must sell at least one video model")
        if self.default_model not in self.models:
            if "default_model" in self.model_fields_set:
                raise ValueError(f"default_model {self.default_model!r} is not one of the models sold")
            self.default_model = next(iter(self.models))
        return self
