"""The opt-out sync against the simulator over real HTTP: a STOP on either side suppresses on both, and
conflicting changes resolve by time (the later wins; a tie or an unknowable order keeps the suppression)."""

from __future__ import annotations

from collections.abc import Iterator

import clicksend
import pytest

from tests.conftest import Simulator, serve
from workers.clicksend.client import ClickSendClient
from workers.clicksend.simlists import OPT_OUT_LIST_ID
from workers.clicksend.simstate import SimState
from workers.clicksend.simulator import create_simulator
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.flow.optouts import OptoutSync

ADA, BEN, CY = "+61411111111", "+61422222222", "+61433333333"


class Clock:
    """ClickSend's clock in the simulator, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000_000.0)


@pytest.fixture
def sim(clock: Clock) -> Iterator[Simulator]:
    state = SimState(clock=clock, seed=7)
    url, stop = serve(create_simulator(state))
    yield Simulator(url, state)
    stop()


@pytest.fixture
def sync(runtime: Runtime, sim: Simulator) -> OptoutSync:
    client = ClickSendClient(sim.url, username="user", api_key="key")
    return OptoutSync(runtime.store, lambda: client, "AU")


@pytest.fixture
def sdk(sim: Simulator) -> Iterator[clicksend.ListsApi]:
    """ClickSend's own SDK on the simulator: what an operator (or ClickSend's STOP rule) does there."""
    with clicksend.ApiClient(clicksend.Configuration(host=sim.url, username="user", password="key")) as api:
        yield clicksend.ListsApi(api)


def on_clicksend(sdk: clicksend.ListsApi) -> dict[str, int]:
    """The numbers on ClickSend's opt-out list, read with the SDK's strict models: number → contact id."""
    page = sdk.view_list_contacts(str(OPT_OUT_LIST_ID)).data
    return {c.phone_number: c.contact_id for c in page.data}


def stop_on_clicksend(sdk: clicksend.ListsApi, number: str) -> int:
    """A STOP as ClickSend's own rule records it: the number joins the opt-out list."""
    request = clicksend.CreateNewContactRequest(phone_number=number)
    return sdk.create_new_contact(str(OPT_OUT_LIST_ID), create_new_contact_request=request).data.contact_id


def remove_on_clicksend(sdk: clicksend.ListsApi, contact_id: int) -> None:
    """An operator takes a contact off the opt-out list in ClickSend's dashboard."""
    reply = clicksend.ContactsApi(sdk.api_client).delete_contact(str(OPT_OUT_LIST_ID), str(contact_id))
    assert (reply.response_code, reply.data) == ("SUCCESS", [])


def test_a_stop_received_by_hookline_reaches_clicksend(runtime: Runtime, sync: OptoutSync,
                                                       sdk: clicksend.ListsApi) -> None:
    runtime.store.optouts.opt_out(ADA, 1_000_000.0, via="reply", detail="STOP")
    assert sync.run(1_000_010.0) == {"remote_added": 1}
    assert list(on_clicksend(sdk)) == [ADA]
    assert sync.run(1_000_020.0) == {}  # in step: nothing more to do
    [change] = [c for c in runtime.store.optouts.changes() if c["side"] == "clicksend"]
    assert (change["number"], change["action"], change["via"], change["at"]) == (ADA, "add", "reply", 1_000_000.0)


def test_a_stop_received_by_clicksend_suppresses_hookline_sends(runtime: Runtime, sync: OptoutSync,
                                                                sdk: clicksend.ListsApi, clock: Clock) -> None:
    stop_on_clicksend(sdk, BEN)
    stop_on_clicksend(sdk, "0433 333 333")  # a local form on ClickSend's list is the same number
    assert sync.run(1_000_010.0) == {"local_added": 2}
    assert runtime.store.optouts.opted_out([ADA, BEN, CY]) == {BEN, CY}
    record = runtime.store.optouts.optouts()[BEN]
    assert (record["since"], record["via"]) == (clock.now, "clicksend")  # when ClickSend added it, and who


def test_a_newer_removal_on_hookline_wins_over_an_older_clicksend_add(runtime: Runtime, sync: OptoutSync,
                                                                      sdk: clicksend.ListsApi) -> None:
    stop_on_clicksend(sdk, ADA)  # at 1_000_000
    runtime.store.optouts.opt_out(ADA, 999_000.0, via="reply")
    runtime.store.optouts.opt_in(ADA, 1_000_005.0, via="operator", detail="asked to be back")
    assert sync.run(1_000_010.0) == {"remote_removed": 1}
    assert on_clicksend(sdk) == {}
    assert runtime.store.optouts.opted_out([ADA]) == set()


def test_a_newer_add_on_clicksend_wins_over_an_older_removal_on_hookline(runtime: Runtime, sync: OptoutSync,
                                                                         sdk: clicksend.ListsApi) -> None:
    runtime.store.optouts.opt_in(ADA, 999_000.0, via="reply", detail="START")
    stop_on_clicksend(sdk, ADA)  # at 1_000_000: later
    assert sync.run(1_000_010.0) == {"local_added": 1}
    assert runtime.store.optouts.opted_out([ADA]) == {ADA}
    assert ADA not in runtime.store.optouts.lifted()


def test_a_removal_on_clicksend_lifts_an_older_suppression_but_not_a_newer_one(
        runtime: Runtime, sync: OptoutSync, sdk: clicksend.ListsApi) -> None:
    runtime.store.optouts.opt_out(ADA, 1_000_000.0, via="reply")
    runtime.store.optouts.opt_out(BEN, 1_000_000.0, via="reply")
    assert sync.run(1_000_010.0) == {"remote_added": 2}
    contacts = on_clicksend(sdk)
    for number in (ADA, BEN):  # both removed on ClickSend some time after the sync at 1_000_010
        remove_on_clicksend(sdk, contacts[number])
    runtime.store.optouts.opt_out(BEN, 1_000_015.0, via="reply", detail="STOP again")  # after the last sync
    assert sync.run(1_000_030.0) == {"local_removed": 1, "remote_added": 1}
    assert runtime.store.optouts.opted_out([ADA, BEN]) == {BEN}
    assert runtime.store.optouts.lifted()[ADA]["via"] == "clicksend"
    assert list(on_clicksend(sdk)) == [BEN]


def test_an_unknowable_order_keeps_the_suppression(runtime: Runtime, sync: OptoutSync,
                                                   sdk: clicksend.ListsApi) -> None:
    runtime.store.optouts.opt_out(ADA, 1_000_000.0, via="reply")
    sync.run(1_000_010.0)
    [contact_id] = on_clicksend(sdk).values()
    remove_on_clicksend(sdk, contact_id)
    # A STOP at the very moment the last sync saw it: which came first cannot be known, so it stays suppressed.
    runtime.store.optouts.opt_out(ADA, 1_000_010.0, via="reply")
    assert sync.run(1_000_030.0) == {"remote_added": 1}
    assert list(on_clicksend(sdk)) == [ADA]


def test_a_stop_arriving_during_the_sync_is_never_undone(runtime: Runtime) -> None:
    optouts = runtime.store.optouts
    optouts.opt_out(ADA, 1_000_020.0, via="reply", detail="STOP")  # newer than the removal the sync carries
    assert not optouts.apply_if_newer(ADA, False, 1_000_010.0, "clicksend")
    assert optouts.apply_if_newer(ADA, False, 1_000_030.0, "clicksend")
    assert not optouts.apply_if_newer(ADA, True, 1_000_020.0, "clicksend")  # an older add after that removal
    assert optouts.opted_out([ADA]) == set()
    assert [(c["action"], c["via"], c["at"]) for c in optouts.changes()] == [
        ("remove", "clicksend", 1_000_030.0), ("add", "reply", 1_000_020.0)]


def test_one_sync_at_a_time(runtime: Runtime, sync: OptoutSync) -> None:
    token = runtime.store.optouts.claim_sync(60)
    assert token is not None
    assert sync.run(1_000_010.0) == {"busy": 1}
    runtime.store.optouts.release_sync("someone-elses")  # not ours to give back
    assert sync.run(1_000_010.0) == {"busy": 1}
    runtime.store.optouts.release_sync(token)
    assert sync.run(1_000_010.0) == {}


def test_the_periodic_job_syncs_through_the_runtime_client(runtime: Runtime, sim: Simulator,
                                                           sdk: clicksend.ListsApi) -> None:
    runtime.settings = runtime.settings.with_(clicksend_base_url=sim.url)
    runtime._client = None
    runtime.store.optouts.opt_out(CY, 1_000_000.0, via="operator")
    assert jobs.sync_optouts() == {"remote_added": 1}
    assert list(on_clicksend(sdk)) == [CY]
