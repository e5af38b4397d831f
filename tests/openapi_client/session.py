"""An operator's session through a Python client generated from the bridge's OpenAPI
document (openapi-python-client), against a real bridge: every call goes through the
generated client, and every request and response is validated against the document
(openapi-core).

Run by tests/openapi_client.rs, which generates the client package, puts it on
PYTHONPATH and passes:
  TEND_BASE   the bridge's base URL, TEND_TOKEN its bearer token
and opens demo gates when asked: this script prints `{"open": "GATE"}` on a line of its
own and waits for `opened` on stdin. Its last line is `{"done": {...}}` with counts; any
failure raises, printing what it saw.
"""

import json
import os
import sys
import time
from urllib.parse import parse_qs, urlparse

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tend_debug_bridge_client import AuthenticatedClient, Client
from tend_debug_bridge_client.api.executions import (
    cancel_execution,
    delete_execution,
    get_execution,
    interrupt_execution,
    list_executions,
    pause_execution,
    resume_execution,
    retry_execution,
    submit_execution,
)
from tend_debug_bridge_client.api.runtime import (
    get_health,
    get_semaphores,
    get_tree,
    interrupt_all,
    run_maintenance,
    sweep_orphans,
)
from tend_debug_bridge_client.models import (
    Accepted,
    Action,
    AtCancellationPoint,
    Block,
    CheckView,
    Created,
    DelayBackoff,
    DryRunView,
    ErrorBody,
    ExecutionList,
    ExecutionStatus,
    ExecutionView,
    FinishCurrent,
    Health,
    HealthStatus,
    Immediate,
    ImmediateGrace,
    InterruptBody,
    InterruptedAll,
    ItemSpec,
    ItemStatus,
    MaintenanceBody,
    MaintenanceReport,
    NoOptions,
    Plan,
    PollNextN,
    SemaphoreList,
    SweepBody,
    SweepReport,
)

BASE = os.environ["TEND_BASE"]
TOKEN = os.environ["TEND_TOKEN"]
# How long a state the session waits for may take to arrive.
PATIENCE = 30.0


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Checked:
    """Validates every request a client sends and every response it gets against the
    document, counting them."""

    def __init__(self, spec):
        self.api = OpenAPI.from_dict(spec)
        self.requests = 0
        self.responses = 0
        self.statuses = {}
        # The next request is one the document says is invalid, sent on purpose.
        self.invalid_next = False

    def on_request(self, request: httpx.Request):
        if self.invalid_next:
            self.invalid_next = False
            try:
                self.api.validate_request(HttpxRequest(request))
            except Exception:
                pass
            else:
                raise AssertionError(f"the document takes {request.method} {request.url}")
        else:
            self.api.validate_request(HttpxRequest(request))
        self.requests += 1

    def on_response(self, response: httpx.Response):
        response.read()
        request = HttpxRequest(response.request)
        try:
            self.api.validate_response(request, HttpxResponse(response))
        except Exception as e:
            raise AssertionError(
                f"{request.method.upper()} {response.request.url} -> {response.status_code}"
                f" does not fit the document: {e!r}\n{response.text[:2000]}"
            ) from e
        self.responses += 1
        key = f"{request.method.upper()} {response.status_code}"
        self.statuses[key] = self.statuses.get(key, 0) + 1

    def hooks(self):
        return {"event_hooks": {"request": [self.on_request], "response": [self.on_response]}}


class HttpxRequest:
    """An httpx request as openapi-core reads requests."""

    def __init__(self, request: httpx.Request):
        self.request = request
        url = urlparse(str(request.url))
        self._url = url
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )

    @property
    def host_url(self):
        return f"{self._url.scheme}://{self._url.netloc}"

    @property
    def path(self):
        return self._url.path

    @property
    def method(self):
        return self.request.method.lower()

    @property
    def body(self):
        content = self.request.content
        return content if content else None

    @property
    def content_type(self):
        return self.request.headers.get("content-type", "")


class HttpxResponse:
    """An httpx response as openapi-core reads responses."""

    def __init__(self, response: httpx.Response):
        self.response = response

    @property
    def data(self):
        return self.response.content

    @property
    def status_code(self):
        return self.response.status_code

    @property
    def content_type(self):
        return self.response.headers.get("content-type", "")

    @property
    def headers(self):
        return Headers(dict(self.response.headers))


def open_gate(name):
    """Asks the test to open demo gate `name`, and waits until it has."""
    print(json.dumps({"open": name}), flush=True)
    answer = sys.stdin.readline().strip()
    assert answer == "opened", f"the test answered {answer!r} to opening gate {name}"


def expect(parsed, kind, what):
    assert isinstance(parsed, kind), f"{what}: expected {kind.__name__}, got {parsed!r}"
    return parsed


def error(response, status, code, what):
    assert response.status_code == status, f"{what}: {response.status_code} {response.content!r}"
    body = expect(response.parsed, ErrorBody, what)
    assert body.error.code == code, f"{what}: {body.error.code}: {body.error.message}"
    return body


class Session:
    def __init__(self, client, checked):
        self.client = client
        self.checked = checked

    def submit(self, plan):
        response = submit_execution.sync_detailed(client=self.client, body=plan)
        assert response.status_code == 201, f"submit {plan.name}: {response.content!r}"
        created = expect(response.parsed, Created, "submit")
        assert response.headers["location"] == f"/executions/{created.id}"
        return created.id

    def view(self, id):
        return expect(get_execution.sync(id, client=self.client), ExecutionView, f"GET {id}")

    def wait(self, id, what, predicate):
        """Polls the execution until `predicate(view)` holds; fails with the last view."""
        deadline = time.monotonic() + PATIENCE
        while True:
            view = self.view(id)
            if predicate(view):
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"{id} never {what}: {view.to_dict()}")
            time.sleep(0.02)

    def wait_status(self, id, status):
        return self.wait(id, f"became {status.value}", lambda v: v.status == status)

    def item(self, view, item_id):
        for block in view.blocks:
            for item in block.items:
                if item.id == item_id:
                    return item
        raise AssertionError(f"{view.id} has no item {item_id}")

    def wait_item(self, id, item_id, status):
        return self.wait(
            id,
            f"had {item_id} {status.value}",
            lambda v: self.item(v, item_id).status == status,
        )

    def accepted(self, response, id, action, what):
        assert response.status_code == 202, f"{what}: {response.status_code} {response.content!r}"
        accepted = expect(response.parsed, Accepted, what)
        assert accepted.id == id and accepted.action == action, f"{what}: {accepted}"


def item(id, kind, params, **metaparams):
    return ItemSpec(id=id, kind=kind, params=params, **metaparams)


def held(name, gate):
    """A plan whose first item waits at `gate`, with two items after it."""
    return Plan(
        name=name,
        parallelism=1,
        blocks=[
            Block(
                name="main",
                items=[
                    item("held", "gate", {"gate": gate, "output": 0}),
                    item("next1", "sum", {"add": 1}, after=["held"]),
                    item("next2", "sum", {"add": 2}, after=["next1"]),
                ],
            )
        ],
    )


def main():
    spec = httpx.get(f"{BASE}/openapi.json", timeout=PATIENCE).json()
    checked = Checked(spec)
    client = AuthenticatedClient(
        base_url=BASE,
        token=TOKEN,
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(PATIENCE),
        httpx_args=checked.hooks(),
    )
    anonymous = Client(
        base_url=BASE,
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(PATIENCE),
        httpx_args=checked.hooks(),
    )
    s = Session(client, checked)

    # Health, and what the runtime holds.
    health = expect(get_health.sync(client=client), Health, "health")
    assert health.status in (HealthStatus.OK, HealthStatus.DEGRADED)
    expect(get_tree.sync(client=client), object, "tree")
    expect(get_semaphores.sync(client=client), SemaphoreList, "semaphores")

    # A plan with every metaparam, run to completion.
    every = Plan(
        name="every metaparam",
        blocks=[
            Block(
                name="first",
                items=[
                    item(
                        "a",
                        "sum",
                        {"add": 1},
                        retry=2,
                        delay=DelayBackoff(first="10ms", max_="1s", jitter=0.2),
                        timeout="30s",
                        sema=["db:2", "tenant"],
                    ),
                    item(
                        "b",
                        "sum",
                        {"add": 2},
                        after=["a"],
                        notify=True,
                        retry=-1,
                        delay="10ms",
                        limit=5.0,
                        burst=2,
                    ),
                ],
            ),
            Block(
                name="second",
                items=[
                    item("c", "sleep", {"ms": 1}, after=["a", "b"], notify=["b"], sema="db"),
                ],
            ),
        ],
    )
    dry = submit_execution.sync(client=client, body=every, dry_run=True)
    dry = expect(dry, DryRunView, "dry run")
    assert dry.would_change == 3, dry
    assert all(i.check == CheckView.WOULD_APPLY for b in dry.blocks for i in b.items), dry
    every_id = s.submit(every)
    view = s.wait_status(every_id, ExecutionStatus.COMPLETED)
    assert s.item(view, "b").output == 3, view.to_dict()
    assert view.outcome.blocks[1].done == ["c"], view.to_dict()

    # A bad plan is a 400 naming the error.
    bad = Plan(name="bad", blocks=[Block(name="b", items=[item("x", "no-such-kind", {})])])
    error(
        submit_execution.sync_detailed(client=client, body=bad),
        400,
        "unknown_kind",
        "unknown kind",
    )

    # Each interrupt strategy, on an execution held at a gate.
    #   finish_current: the running item finishes, nothing after it starts.
    fc = s.submit(held("finish current", "fc"))
    s.wait_item(fc, "held", ItemStatus.RUNNING)
    s.accepted(
        interrupt_execution.sync_detailed(
            fc, client=client, body=InterruptBody(strategy=FinishCurrent.FINISH_CURRENT)
        ),
        fc,
        Action.INTERRUPTING,
        "interrupt finish_current",
    )
    open_gate("fc")
    view = s.wait_status(fc, ExecutionStatus.INTERRUPTED)
    outcome = view.outcome.blocks[0]
    assert outcome.done == ["held"] and outcome.not_started == ["next1", "next2"], outcome

    #   poll_next_n: one more item starts.
    pn = s.submit(held("poll next n", "pn"))
    s.wait_item(pn, "held", ItemStatus.RUNNING)
    s.accepted(
        interrupt_execution.sync_detailed(
            pn, client=client, body=InterruptBody(strategy=PollNextN(poll_next_n=1))
        ),
        pn,
        Action.INTERRUPTING,
        "interrupt poll_next_n",
    )
    open_gate("pn")
    view = s.wait_status(pn, ExecutionStatus.INTERRUPTED)
    outcome = view.outcome.blocks[0]
    assert outcome.done == ["held", "next1"] and outcome.not_started == ["next2"], outcome

    #   at_cancellation_point: the held item stops at once, keeping its checkpoint.
    acp = s.submit(held("at cancellation point", "acp"))
    s.wait_item(acp, "held", ItemStatus.RUNNING)
    s.accepted(
        interrupt_execution.sync_detailed(
            acp,
            client=client,
            body=InterruptBody(strategy=AtCancellationPoint.AT_CANCELLATION_POINT),
        ),
        acp,
        Action.INTERRUPTING,
        "interrupt at_cancellation_point",
    )
    view = s.wait_status(acp, ExecutionStatus.INTERRUPTED)
    assert view.outcome.blocks[0].interrupted == ["held"], view.outcome

    #   immediate: as at_cancellation_point, aborted after the grace.
    im = s.submit(held("immediate", "im"))
    s.wait_item(im, "held", ItemStatus.RUNNING)
    s.accepted(
        interrupt_execution.sync_detailed(
            im,
            client=client,
            body=InterruptBody(strategy=Immediate(immediate=ImmediateGrace(grace="5s"))),
        ),
        im,
        Action.INTERRUPTING,
        "interrupt immediate",
    )
    view = s.wait_status(im, ExecutionStatus.INTERRUPTED)
    assert view.outcome.blocks[0].interrupted == ["held"], view.outcome

    #   An interrupt of an execution that is not running is a 409.
    error(
        interrupt_execution.sync_detailed(im, client=client, body=InterruptBody()),
        409,
        "invalid_state",
        "interrupt an interrupted execution",
    )

    # Resume the one interrupted at a cancellation point: it waits at its gate again.
    s.accepted(
        resume_execution.sync_detailed(acp, client=client, body=NoOptions()),
        acp,
        Action.RESUMING,
        "resume",
    )
    s.wait_item(acp, "held", ItemStatus.RUNNING)
    open_gate("acp")
    s.wait_status(acp, ExecutionStatus.COMPLETED)
    error(
        resume_execution.sync_detailed(acp, client=client, body=NoOptions()),
        409,
        "invalid_state",
        "resume a completed execution",
    )

    # Pause (the default strategy, `{}`), then resume.
    paused = s.submit(held("pause", "pause"))
    s.wait_item(paused, "held", ItemStatus.RUNNING)
    s.accepted(
        pause_execution.sync_detailed(
            paused,
            client=client,
            body=InterruptBody(strategy=AtCancellationPoint.AT_CANCELLATION_POINT),
        ),
        paused,
        Action.PAUSING,
        "pause",
    )
    s.wait_status(paused, ExecutionStatus.PAUSED)
    s.accepted(
        resume_execution.sync_detailed(paused, client=client, body=NoOptions()),
        paused,
        Action.RESUMING,
        "resume a paused execution",
    )
    open_gate("pause")
    s.wait_status(paused, ExecutionStatus.COMPLETED)

    # Retry a failed execution: its first attempt fails, the retry's succeeds.
    failing = s.submit(
        Plan(
            name="fails once",
            blocks=[Block(name="b", items=[item("flaky", "sleep", {"ms": 1, "fail_times": 1})])],
        )
    )
    view = s.wait_status(failing, ExecutionStatus.FAILED)
    assert view.outcome.blocks[0].failed == ["flaky"], view.outcome
    s.accepted(
        retry_execution.sync_detailed(failing, client=client, body=NoOptions()),
        failing,
        Action.RETRYING,
        "retry",
    )
    view = s.wait_status(failing, ExecutionStatus.COMPLETED)
    assert s.item(view, "flaky").attempts == 2, view.to_dict()

    # Interrupt every running execution.
    everyone = s.submit(held("interrupt all", "all"))
    s.wait_item(everyone, "held", ItemStatus.RUNNING)
    answer = interrupt_all.sync_detailed(
        client=client, body=InterruptBody(strategy=AtCancellationPoint.AT_CANCELLATION_POINT)
    )
    assert answer.status_code == 202, answer.content
    assert everyone in expect(answer.parsed, InterruptedAll, "interrupt all").ids
    s.wait_status(everyone, ExecutionStatus.INTERRUPTED)
    nobody = expect(
        interrupt_all.sync(client=client, body=InterruptBody()), InterruptedAll, "interrupt none"
    )
    assert nobody.ids == [], nobody

    # List through every page: each execution once, newest first.
    ids = [every_id, fc, pn, acp, im, paused, failing, everyone]
    seen, cursor, pages = [], None, 0
    while True:
        page = list_executions.sync(
            client=client, limit=3, **({"cursor": cursor} if cursor else {})
        )
        page = expect(page, ExecutionList, "list")
        pages += 1
        assert len(page.executions) <= 3
        seen += [e.id for e in page.executions]
        if not page.next_:
            break
        cursor = page.next_
    assert sorted(seen) == sorted(ids) and seen == list(reversed(ids)), (seen, ids)
    assert pages == 3, pages
    interrupted = expect(
        list_executions.sync(client=client, status=ExecutionStatus.INTERRUPTED),
        ExecutionList,
        "list interrupted",
    )
    assert sorted(e.id for e in interrupted.executions) == sorted([fc, pn, im, everyone])
    named = expect(list_executions.sync(client=client, q="POLL"), ExecutionList, "search")
    assert [e.id for e in named.executions] == [pn], named
    checked.invalid_next = True
    error(
        list_executions.sync_detailed(client=client, q="x" * 129),
        400,
        "invalid_query",
        "a search over 128 characters",
    )

    # Cancel: a running execution ends cancelled for good, an interrupted one at once; a
    # finished one is a 409. A cancelled execution can be deleted.
    cancelled = s.submit(held("cancel", "cancel"))
    s.wait_item(cancelled, "held", ItemStatus.RUNNING)
    s.accepted(
        cancel_execution.sync_detailed(
            cancelled,
            client=client,
            body=InterruptBody(strategy=AtCancellationPoint.AT_CANCELLATION_POINT),
        ),
        cancelled,
        Action.CANCELLING,
        "cancel a running execution",
    )
    s.wait_status(cancelled, ExecutionStatus.CANCELLED)
    s.accepted(
        cancel_execution.sync_detailed(im, client=client, body=InterruptBody()),
        im,
        Action.CANCELLING,
        "cancel an interrupted execution",
    )
    s.wait_status(im, ExecutionStatus.CANCELLED)
    error(
        cancel_execution.sync_detailed(cancelled, client=client, body=InterruptBody()),
        409,
        "invalid_state",
        "cancel a cancelled execution",
    )
    assert delete_execution.sync_detailed(cancelled, client=client).status_code == 204

    # Submit if absent: a second submit with the same key answers the first execution.
    once = Plan(
        name="once",
        key="session-once",
        blocks=[Block(name="b", items=[item("one", "sum", {"add": 1})])],
    )
    first = s.submit(once)
    again = submit_execution.sync_detailed(client=client, body=once)
    assert again.status_code == 200, again.content
    assert expect(again.parsed, Created, "submit again").id == first
    by_header = submit_execution.sync_detailed(
        client=client,
        body=Plan(name="once", blocks=once.blocks),
        idempotency_key="session-once",
    )
    assert by_header.status_code == 200 and by_header.parsed.id == first, by_header.content
    other = Plan(name="other", key="session-once", blocks=once.blocks)
    error(
        submit_execution.sync_detailed(client=client, body=other),
        409,
        "key_conflict",
        "the same key for another plan",
    )
    s.wait_status(first, ExecutionStatus.COMPLETED)

    # Delete a finished execution; a running one is a 409, a deleted one a 404.
    assert delete_execution.sync_detailed(every_id, client=client).status_code == 204
    error(get_execution.sync_detailed(every_id, client=client), 404, "unknown_execution", "GET deleted")
    error(delete_execution.sync_detailed(every_id, client=client), 404, "unknown_execution", "DELETE deleted")
    running = s.submit(held("running", "running"))
    s.wait_item(running, "held", ItemStatus.RUNNING)
    error(delete_execution.sync_detailed(running, client=client), 409, "invalid_state", "DELETE running")
    open_gate("running")
    s.wait_status(running, ExecutionStatus.COMPLETED)

    # Maintenance and the orphan sweep, with and without options.
    expect(run_maintenance.sync(client=client, body=MaintenanceBody()), MaintenanceReport, "maintenance")
    report = expect(
        run_maintenance.sync(client=client, body=MaintenanceBody(target_age="1h")),
        MaintenanceReport,
        "maintenance 1h",
    )
    assert report.success, report
    expect(sweep_orphans.sync(client=client, body=SweepBody()), SweepReport, "sweep")
    report = expect(
        sweep_orphans.sync(client=client, body=SweepBody(protection="0s")), SweepReport, "sweep 0s"
    )
    assert report.protection == "0s", report

    # Without the token a change is refused with a declared 401.
    checked.invalid_next = True
    error(
        interrupt_all.sync_detailed(client=anonymous, body=InterruptBody()),
        401,
        "unauthorized",
        "interrupt all without the token",
    )

    health = expect(get_health.sync(client=client), Health, "health at the end")
    assert health.status == HealthStatus.OK, health

    assert checked.requests == checked.responses, (checked.requests, checked.responses)
    print(
        json.dumps(
            {
                "done": {
                    "requests": checked.requests,
                    "validated": checked.responses,
                    "statuses": checked.statuses,
                }
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
