"""The contract's entry points by name, as a transaction names them: which build has which, their
parameters in the contract's order, and JSON arguments turned into the typed values the model takes.

JSON shapes: integers as numbers or decimal strings (i128 does not fit a JSON number); addresses as G...
or C... strkeys; `Option<Address>` as a strkey or null; BytesN<32> as 64 hex digits; `steps` as
[{"unlock_time", "unlock_amount"}]; `streams` as [{"recipient", "token_address", "amount", "duration",
"cliff_duration" (optional, null)}]; `milestones` as [{"milestone_id", "amount", "condition",
"is_unlocked" (optional, false)}] with `condition` one of {"TimeOnly": time},
{"OracleAttestation": {"oracle_signer": address, "attestation_id": hex}} or
{"PriceTarget": {"oracle", "target_price", "is_above"}}. The devnet has no price oracle, so a
PriceTarget milestone is refused as an invalid invocation. Values already typed (the classes of
`devnet.terms`) are taken as they are.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from typing import Any

from stellar_sdk import StrKey

from devnet.terms import (
    BUILDS,
    I128_MAX,
    I128_MIN,
    NEWEST_BUILD,
    OLD_BUILD,
    U32_MAX,
    U64_MAX,
    BatchStreamInput,
    ConditionalMilestone,
    InvalidInvocation,
    OracleAttestation,
    PriceTarget,
    TimeOnly,
    UnlockCondition,
    VestingStep,
)


class Kind(enum.StrEnum):
    ADDRESS = "Address"
    OPTION_ADDRESS = "Option<Address>"
    I128 = "i128"
    U64 = "u64"
    U32 = "u32"
    BOOL = "bool"
    HASH = "BytesN<32>"
    STREAM_IDS = "Vec<u64>"
    STEPS = "Vec<VestingStep>"
    MILESTONES = "Vec<ConditionalMilestone>"
    BATCH = "Vec<BatchStreamInput>"


A = Kind.ADDRESS
BOTH, NEWEST = BUILDS, (NEWEST_BUILD,)

# name -> (the builds that have it, its parameters in order)
FUNCTIONS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, Kind], ...]]] = {
    "initialize": (BOTH, (("admin", A), ("treasury", A), ("fee_rate_bps", Kind.U32))),
    "update_fee_config": (BOTH, (("admin", A), ("treasury", A), ("fee_rate_bps", Kind.U32))),
    "transfer_admin": (BOTH, (("current_admin", A), ("new_admin", A))),
    "set_protocol_pause": (NEWEST, (("caller", A), ("paused", Kind.BOOL))),
    "set_emergency_pause": (NEWEST, (("admin", A), ("paused", Kind.BOOL))),
    "set_emergency_guardian": (NEWEST, (("admin", A), ("guardian", Kind.OPTION_ADDRESS))),
    "upgrade": (NEWEST, (("new_wasm_hash", Kind.HASH),)),
    "migrate": (NEWEST, (("target_version", Kind.U32),)),
    "create_stream": (BOTH, (("sender", A), ("recipient", A), ("token_address", A), ("amount", Kind.I128),
                             ("duration", Kind.U64))),
    "batch_create_streams": (NEWEST, (("sender", A), ("streams", Kind.BATCH))),
    "create_stream_with_cliff": (NEWEST, (("sender", A), ("recipient", A), ("token_address", A),
                                          ("amount", Kind.I128), ("duration", Kind.U64),
                                          ("cliff_duration", Kind.U64))),
    "create_step_vesting_stream": (NEWEST, (("sender", A), ("recipient", A), ("token_address", A),
                                            ("amount", Kind.I128), ("steps", Kind.STEPS))),
    "create_hybrid_cliff_stream": (NEWEST, (("sender", A), ("recipient", A), ("token_address", A),
                                            ("amount", Kind.I128), ("cliff_time", Kind.U64),
                                            ("cliff_unlock_amount", Kind.I128), ("linear_duration", Kind.U64))),
    "create_conditional_stream": (NEWEST, (("sender", A), ("recipient", A), ("token_address", A),
                                           ("amount", Kind.I128), ("milestones", Kind.MILESTONES))),
    "create_allowance_stream": (NEWEST, (("sender", A), ("recipient", A), ("token_address", A),
                                         ("duration", Kind.U64))),
    "top_up_stream": (BOTH, (("sender", A), ("stream_id", Kind.U64), ("amount", Kind.I128))),
    "withdraw": (BOTH, (("recipient", A), ("stream_id", Kind.U64))),
    "batch_withdraw": (NEWEST, (("recipient", A), ("stream_ids", Kind.STREAM_IDS))),
    "cancel_stream": (BOTH, (("sender", A), ("stream_id", Kind.U64))),
    "pause_stream": (BOTH, (("sender", A), ("stream_id", Kind.U64))),
    "resume_stream": (BOTH, (("sender", A), ("stream_id", Kind.U64))),
    "transfer_recipient": (NEWEST, (("current_recipient", A), ("stream_id", Kind.U64), ("new_recipient", A))),
    "modify_rate": (NEWEST, (("sender", A), ("stream_id", Kind.U64), ("new_rate_per_second", Kind.I128))),
    "verify_and_unlock_milestone": (NEWEST, (("caller", A), ("stream_id", Kind.U64), ("milestone_id", Kind.U32))),
    "request_dispute": (NEWEST, (("sender", A), ("stream_id", Kind.U64))),
    "resolve_dispute": (NEWEST, (("arbiter", A), ("stream_id", Kind.U64), ("approved", Kind.BOOL))),
    "close_stream": (NEWEST, (("caller", A), ("stream_id", Kind.U64))),
    "extend_stream_ttl": (NEWEST, (("stream_id", Kind.U64),)),
    "bump_stream_ttl": (NEWEST, (("stream_id", Kind.U64),)),
}


def functions(build: str) -> tuple[str, ...]:
    """The functions a build has, in the order of `FUNCTIONS`."""
    return tuple(name for name, (builds, _) in FUNCTIONS.items() if build in builds)


def describe() -> dict[str, dict[str, dict[str, str]]]:
    """Every build's functions with their parameters and types, for /invoke's documentation."""
    return {build: {name: {param: kind.value for param, kind in FUNCTIONS[name][1]} for name in functions(build)}
            for build in (NEWEST_BUILD, OLD_BUILD)}


_DECIMAL = re.compile(r"-?[0-9]+\Z")
_HEX32 = re.compile(r"[0-9a-fA-F]{64}\Z")


def _integer(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, str) and _DECIMAL.match(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInvocation(f"{what} must be an integer in [{low}, {high}]: {value!r:.80}")
    return value


def _address(value: object, what: str) -> str:
    if not isinstance(value, str) or not (
        StrKey.is_valid_ed25519_public_key(value) or StrKey.is_valid_contract(value)
    ):
        raise InvalidInvocation(f"{what} is not a G... or C... address: {value!r:.80}")
    return value


def _bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInvocation(f"{what} must be true or false: {value!r:.80}")
    return value


def _hash(value: object, what: str) -> bytes:
    if isinstance(value, bytes) and len(value) == 32:
        return value
    if not isinstance(value, str) or not _HEX32.match(value):
        raise InvalidInvocation(f"{what} must be 32 bytes as 64 hex digits: {value!r:.80}")
    return bytes.fromhex(value)


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise InvalidInvocation(f"{what} must be a list: {value!r:.80}")
    return list(value)


def _object(value: object, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInvocation(f"{what} must be an object with {', '.join(required)}: {value!r:.80}")
    missing = [name for name in required if name not in value]
    unknown = [name for name in value if name not in required + optional]
    if missing or unknown:
        raise InvalidInvocation(f"{what} needs {', '.join(required)}"
                                + (f" (optional: {', '.join(optional)})" if optional else "")
                                + f"; got {', '.join(map(str, value))}")
    return dict(value)


def _step(value: object, what: str) -> VestingStep:
    if isinstance(value, VestingStep):
        return value
    step = _object(value, what, ("unlock_time", "unlock_amount"))
    return VestingStep(_integer(step["unlock_time"], f"{what}.unlock_time", 0, U64_MAX),
                       _integer(step["unlock_amount"], f"{what}.unlock_amount", I128_MIN, I128_MAX))


def _condition(value: object, what: str) -> UnlockCondition:
    if isinstance(value, TimeOnly | OracleAttestation | PriceTarget):
        condition: UnlockCondition = value
    elif isinstance(value, Mapping) and len(value) == 1 and "TimeOnly" in value:
        condition = TimeOnly(_integer(value["TimeOnly"], f"{what}.TimeOnly", 0, U64_MAX))
    elif isinstance(value, Mapping) and len(value) == 1 and "OracleAttestation" in value:
        body = _object(value["OracleAttestation"], f"{what}.OracleAttestation", ("oracle_signer", "attestation_id"))
        condition = OracleAttestation(_address(body["oracle_signer"], f"{what}.oracle_signer"),
                                      _hash(body["attestation_id"], f"{what}.attestation_id"))
    elif isinstance(value, Mapping) and len(value) == 1 and "PriceTarget" in value:
        body = _object(value["PriceTarget"], f"{what}.PriceTarget", ("oracle", "target_price", "is_above"))
        condition = PriceTarget(_address(body["oracle"], f"{what}.oracle"),
                                _integer(body["target_price"], f"{what}.target_price", I128_MIN, I128_MAX),
                                _bool(body["is_above"], f"{what}.is_above"))
    else:
        raise InvalidInvocation(f"{what} must be one of {{\"TimeOnly\": ...}}, {{\"OracleAttestation\": ...}}, "
                                f"{{\"PriceTarget\": ...}}: {value!r:.80}")
    if isinstance(condition, PriceTarget):
        raise InvalidInvocation(f"{what}: PriceTarget conditions need a price oracle, which the devnet does not "
                                "have; use TimeOnly or OracleAttestation")
    return condition


def _milestone(value: object, what: str) -> ConditionalMilestone:
    if isinstance(value, ConditionalMilestone):
        _condition(value.condition, f"{what}.condition")
        return value
    body = _object(value, what, ("milestone_id", "amount", "condition"), ("is_unlocked",))
    return ConditionalMilestone(
        milestone_id=_integer(body["milestone_id"], f"{what}.milestone_id", 0, U32_MAX),
        amount=_integer(body["amount"], f"{what}.amount", I128_MIN, I128_MAX),
        condition=_condition(body["condition"], f"{what}.condition"),
        is_unlocked=_bool(body.get("is_unlocked", False), f"{what}.is_unlocked"),
    )


def _batch_input(value: object, what: str) -> BatchStreamInput:
    if isinstance(value, BatchStreamInput):
        return value
    body = _object(value, what, ("recipient", "token_address", "amount", "duration"), ("cliff_duration",))
    cliff = body.get("cliff_duration")
    return BatchStreamInput(
        recipient=_address(body["recipient"], f"{what}.recipient"),
        token_address=_address(body["token_address"], f"{what}.token_address"),
        amount=_integer(body["amount"], f"{what}.amount", I128_MIN, I128_MAX),
        duration=_integer(body["duration"], f"{what}.duration", 0, U64_MAX),
        cliff_duration=None if cliff is None else _integer(cliff, f"{what}.cliff_duration", 0, U64_MAX),
    )


def _each(parse: Callable[[object, str], Any]) -> Callable[[object, str], Any]:
    return lambda value, what: [parse(item, f"{what}[{i}]") for i, item in enumerate(_list(value, what))]


_PARSERS: dict[Kind, Callable[[object, str], Any]] = {
    Kind.ADDRESS: _address,
    Kind.OPTION_ADDRESS: lambda value, what: None if value is None else _address(value, what),
    Kind.I128: lambda value, what: _integer(value, what, I128_MIN, I128_MAX),
    Kind.U64: lambda value, what: _integer(value, what, 0, U64_MAX),
    Kind.U32: lambda value, what: _integer(value, what, 0, U32_MAX),
    Kind.BOOL: _bool,
    Kind.HASH: _hash,
    Kind.STREAM_IDS: _each(lambda value, what: _integer(value, what, 0, U64_MAX)),
    Kind.STEPS: _each(_step),
    Kind.MILESTONES: _each(_milestone),
    Kind.BATCH: _each(_batch_input),
}


def parse_value(kind: Kind, value: object, what: str) -> Any:
    """One value of `kind` from its JSON form; InvalidInvocation names `what` when it is not one."""
    return _PARSERS[kind](value, what)


def parse(function: str, args: Mapping[str, object], build: str) -> dict[str, Any]:
    """The typed arguments of a call of `function` on `build`; InvalidInvocation names what is wrong."""
    if function not in FUNCTIONS or build not in FUNCTIONS[function][0]:
        raise InvalidInvocation(f"unknown function {function!r:.80}; build {build} has {', '.join(functions(build))}")
    params = FUNCTIONS[function][1]
    names = [name for name, _ in params]
    unexpected = [name for name in args if name not in names]
    missing = [name for name in names if name not in args]
    if unexpected or missing:
        raise InvalidInvocation(f"{function} takes ({', '.join(names)})"
                                + (f"; unexpected argument {unexpected[0]!r:.80}" if unexpected else "")
                                + (f"; missing argument {missing[0]!r}" if missing else ""))
    return {name: _PARSERS[kind](args[name], name) for name, kind in params}
