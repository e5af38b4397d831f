"""schemathesis hooks for tests/schemathesis.rs (loaded through SCHEMATHESIS_HOOKS).

The positive data check holds the bridge to its document: a request the document takes
must not be refused. A plan, though, must also say what no schema can: kinds the runtime
has, params those kinds decode, ids that `after` and `notify` may name. So before each
call, a plan generated as valid is made runnable in those respects only, and everything
the schema does say (ids, metaparams and their bounds, durations, semaphore tags) is left
as generated, for the server to take:

- every item is a `sleep` of 0 ms (a real kind, with params it decodes);
- ids are made unique, `after` keeps only ids of items before it, `notify` only ids from
  `after`; a plan without items gets one;
- the pairs the schema describes in words are completed: `delay` gets a `retry` other
  than 0, `limit` a `burst` and `burst` a `limit`, a backoff's `max` is made no shorter
  than its `first` (by adding `first` to it);
- a plan `key` sent with an `Idempotency-Key` header is made the header's (the two must
  be equal);
- `parallelism` is kept within the test runtime's `max_parallelism` (1024), and retries
  to 3, so that no generated plan keeps retrying after the run.

And for `POST /maintenance`, the rule its `target_age` states in words: a target age
belongs to a cleanup, so a flush is sent without one (the server refuses the pair, 400).

Bodies generated as invalid are left alone: the negative data check needs them refused.

Integers are sent as JSON integers: schemathesis also sends whole floats (`2.0`) where an
integer is declared, which serde reads only as a float and refuses where it wants an
integer. The document cannot say "no decimal point", so the bridge's readers of integers
(and this note) are where that lives.
"""

import schemathesis
from schemathesis.core.parameters import ParameterLocation

MAX_PARALLELISM = 1024
MAX_RETRIES = 3


def whole_numbers(value):
    """`value` with every float that is a whole number as an int."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    return value


def body_is_positive(case):
    meta = case.meta
    if meta is None:
        return False
    component = meta.components.get(ParameterLocation.BODY)
    if component is None:
        return meta.generation.mode.is_positive
    return component.mode.is_positive


def unique(wanted, seen):
    name, n = wanted, 0
    while name in seen:
        n += 1
        name = f"{wanted[:100]}.{n}"
    return name


def runnable(plan):
    """Makes a plan that fits the schema one the test runtime runs (see the module doc)."""
    blocks = plan.get("blocks")
    if not isinstance(blocks, list):
        blocks = plan["blocks"] = []
    seen = []
    for block in blocks:
        items = block.get("items")
        if not isinstance(items, list):
            items = block["items"] = []
        for item in items:
            item["kind"] = "sleep"
            item["params"] = {"ms": 0}
            item["id"] = unique(item["id"], seen)
            after = [a for a in item.get("after") or [] if a in seen]
            item["after"] = after
            if isinstance(item.get("notify"), list):
                item["notify"] = [n for n in item["notify"] if n in after]
            retry = item.get("retry")
            if retry is not None and (retry == -1 or retry > MAX_RETRIES):
                item["retry"] = retry = MAX_RETRIES
            delay = item.get("delay")
            if delay is not None and not retry:
                item["retry"] = 1
            if isinstance(delay, dict) and delay.get("max") is not None:
                delay["max"] = f"{delay['first']} {delay['max']}"
            if item.get("limit") is not None and item.get("burst") is None:
                item["burst"] = 1
            if item.get("burst") is not None and item.get("limit") is None:
                item["limit"] = 1.0
            seen.append(item["id"])
    if not seen:
        blocks.append(
            {"name": "added", "items": [{"id": "added", "kind": "sleep", "params": {"ms": 0}}]}
        )
    parallelism = plan.get("parallelism")
    if isinstance(parallelism, int) and parallelism > MAX_PARALLELISM:
        plan["parallelism"] = MAX_PARALLELISM


@schemathesis.hook
def before_call(context, case, **kwargs):
    case.body = whole_numbers(case.body)
    if (
        case.operation.method.upper() == "POST"
        and case.operation.path == "/executions"
        and isinstance(case.body, dict)
        and body_is_positive(case)
    ):
        runnable(case.body)
        header = next(
            (v for k, v in (case.headers or {}).items() if k.lower() == "idempotency-key"), None
        )
        if header is not None and case.body.get("key") is not None:
            case.body["key"] = header
    if (
        case.operation.method.upper() == "POST"
        and case.operation.path == "/maintenance"
        and isinstance(case.body, dict)
        and body_is_positive(case)
        and case.body.get("operation") == "flush"
    ):
        case.body.pop("target_age", None)
