"""The model-work scheduler: slots per work class, bounded queues per action, highest-response-ratio-next between
actions, heavy work on lower-priority threads."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from facecloud.config import Settings
from facecloud.errors import ApiError
from facecloud.gateway.registry import registry
from facecloud.gateway.scheduler import ModelWorkScheduler, does_model_work
from facecloud.priority import thread_nice
from facecloud.vision.pipeline import IMAGES_IN_PARALLEL, Pipeline


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def occupy(
    scheduler: ModelWorkScheduler, action: str, release: threading.Event, log: list[str], heavy: bool = False
) -> threading.Thread:
    def run() -> None:
        try:
            with scheduler.slot(action, heavy):
                log.append(action)
                release.wait(5)
        except ApiError as error:
            log.append(error.code)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def measure(scheduler: ModelWorkScheduler, clock: FakeClock, costs: dict[str, float]) -> None:
    """Give each action a measured cost (its time in a slot) on the fake clock."""
    for action, cost in costs.items():
        with scheduler.slot(action):
            clock.now += cost


def at_once() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def test_model_work_is_told_by_the_request_fields() -> None:
    actions = registry()
    for name in ("DetectFace", "CompareFace", "SearchFaces", "CreatePerson", "DetectLiveFace"):
        if name in actions:
            assert does_model_work(actions[name].request), name
    for name in ("GetPersonListNum", "CreateGroup", "DeletePerson"):
        if name in actions:
            assert not does_model_work(actions[name].request), name


def test_at_most_slots_run_and_a_full_queue_is_refused() -> None:
    scheduler = ModelWorkScheduler(slots=1, queue_limit=1)
    release, log = threading.Event(), []
    first = occupy(scheduler, "CompareFace", release, log)
    wait_until(lambda: log == ["CompareFace"])
    second = occupy(scheduler, "CompareFace", release, log)
    wait_until(lambda: scheduler.waiting() == {"CompareFace": 1})
    with pytest.raises(ApiError) as refused, scheduler.slot("CompareFace"):
        pass
    assert refused.value.code == "RequestLimitExceeded"
    assert "CompareFace" in refused.value.message_for("en-US")
    assert "CompareFace" in refused.value.message_for("zh-CN")
    assert log == ["CompareFace"]  # the queued one has not started
    release.set()
    first.join(5)
    second.join(5)
    assert log == ["CompareFace", "CompareFace"]
    assert scheduler.waiting() == {}


def test_each_action_has_its_own_bounded_queue() -> None:
    scheduler = ModelWorkScheduler(slots=1, queue_limit=1)
    release, log = threading.Event(), []
    threads = [occupy(scheduler, "CompareFace", release, log)]
    wait_until(lambda: log == ["CompareFace"])
    threads.append(occupy(scheduler, "CompareFace", release, log))
    threads.append(occupy(scheduler, "DetectFace", release, log))
    wait_until(lambda: scheduler.waiting() == {"CompareFace": 1, "DetectFace": 1})
    release.set()
    for thread in threads:
        thread.join(5)
    assert sorted(log) == ["CompareFace", "CompareFace", "DetectFace"]


def test_the_freed_slot_goes_to_the_highest_response_ratio() -> None:
    clock = FakeClock()
    scheduler = ModelWorkScheduler(slots=1, clock=clock)
    measure(scheduler, clock, {"CompareFace": 1.0, "DetectFace": 0.1, "SearchFaces": 0.5})  # one class here
    release, log = threading.Event(), []
    holder = occupy(scheduler, "SearchFaces", release, log)
    wait_until(lambda: log == ["SearchFaces"])
    heavy = occupy(scheduler, "CompareFace", at_once(), log)  # queued at t
    wait_until(lambda: scheduler.waiting() == {"CompareFace": 1})
    clock.now += 0.5
    light = occupy(scheduler, "DetectFace", at_once(), log)  # queued 0.5 s later
    wait_until(lambda: scheduler.waiting() == {"CompareFace": 1, "DetectFace": 1})
    clock.now += 0.5
    # CompareFace: (1.0 + 1.0) / 1.0 = 2; DetectFace: (0.5 + 0.1) / 0.1 = 6: the light one goes first, although
    # it came later, because its wait is already long for its work.
    release.set()
    holder.join(5)
    heavy.join(5)
    light.join(5)
    assert log == ["SearchFaces", "DetectFace", "CompareFace"]


def test_a_heavy_action_is_not_starved() -> None:
    clock = FakeClock()
    scheduler = ModelWorkScheduler(slots=1, clock=clock)
    measure(scheduler, clock, {"CompareFace": 1.0, "DetectFace": 0.1, "SearchFaces": 0.5})  # one class here
    release, log = threading.Event(), []
    holder = occupy(scheduler, "SearchFaces", release, log)
    wait_until(lambda: log == ["SearchFaces"])
    heavy = occupy(scheduler, "CompareFace", at_once(), log)
    wait_until(lambda: scheduler.waiting() == {"CompareFace": 1})
    clock.now += 10.0  # the heavy one has waited 10 costs
    light = occupy(scheduler, "DetectFace", at_once(), log)  # just arrived: ratio 1
    wait_until(lambda: scheduler.waiting() == {"CompareFace": 1, "DetectFace": 1})
    release.set()
    for thread in (holder, heavy, light):
        thread.join(5)
    assert log == ["SearchFaces", "CompareFace", "DetectFace"]


def test_a_light_call_does_not_wait_behind_heavy_work() -> None:
    """One slot per class: a DetectFace starts while a CompareFace holds the heavy slot, and a second CompareFace
    waits for the heavy slot although the light one is free."""
    scheduler = ModelWorkScheduler(slots=1)
    release, log = threading.Event(), []
    heavy = occupy(scheduler, "CompareFace", release, log, heavy=True)
    wait_until(lambda: log == ["CompareFace"])
    light = occupy(scheduler, "DetectFace", at_once(), log)
    light.join(5)
    assert log == ["CompareFace", "DetectFace"]  # served while the heavy one still runs
    second_heavy = occupy(scheduler, "CompareFace", at_once(), log, heavy=True)
    wait_until(lambda: scheduler.waiting() == {"CompareFace": 1})
    release.set()
    for thread in (heavy, second_heavy):
        thread.join(5)
    assert log == ["CompareFace", "DetectFace", "CompareFace"]


def test_the_actions_that_match_faces_are_heavy_and_the_others_light() -> None:
    """Declared with the action, so neither the machine's speed nor a call that fails fast moves an action."""
    actions = registry()
    heavy = {name for name, spec in actions.items() if spec.heavy}
    assert heavy == {
        "CompareFace",
        "CompareMaskFace",
        "CreateFace",
        "CreatePerson",
        "DetectFaceSimilarity",
        "SearchFaces",
        "SearchFacesReturnsByGroup",
        "SearchPersons",
        "SearchPersonsReturnsByGroup",
        "VerifyFace",
        "VerifyPerson",
    }
    assert all(does_model_work(actions[name].request) for name in heavy)


def test_a_call_that_fails_does_not_teach_the_cost() -> None:
    clock = FakeClock()
    scheduler = ModelWorkScheduler(slots=1, clock=clock)
    measure(scheduler, clock, {"CreatePerson": 0.2})
    with pytest.raises(ApiError), scheduler.slot("CreatePerson", heavy=True):
        clock.now += 0.002  # no face: answered at once
        raise ApiError("InvalidParameterValue.NoFaceInPhoto", "No face.", "没有人脸。")
    assert scheduler.cost("CreatePerson") == 0.2


@pytest.mark.skipif(sys.platform != "linux", reason="threads have their own nice value on Linux only")
def test_heavy_work_runs_at_a_lower_priority_and_light_work_where_it_is() -> None:
    clock = FakeClock()
    scheduler = ModelWorkScheduler(slots=1, clock=clock, heavy_nice=5)
    here = thread_nice()
    with scheduler.slot("CompareFace", heavy=True) as run:
        heavy_nice = run(thread_nice)
    with scheduler.slot("DetectFace") as run:
        light_nice = run(thread_nice)
    assert heavy_nice == min(here + 5, 19)
    assert light_nice == here == thread_nice()  # the caller's own priority is untouched


def test_an_error_of_heavy_work_reaches_the_caller_and_frees_the_slot() -> None:
    scheduler = ModelWorkScheduler(slots=1)

    def fail() -> None:
        raise ApiError("InvalidParameterValue.NoFaceInPhoto", "No face.", "没有人脸。")

    with pytest.raises(ApiError) as error, scheduler.slot("CompareFace", heavy=True) as run:
        run(fail)
    assert error.value.code == "InvalidParameterValue.NoFaceInPhoto"
    with scheduler.slot("CompareFace", heavy=True) as run:  # the slot came back
        assert run(lambda: 42) == 42


def test_a_wait_past_the_deadline_leaves_the_queue() -> None:
    scheduler = ModelWorkScheduler(slots=1, max_wait_s=0.05)
    release, log = threading.Event(), []
    holder = occupy(scheduler, "CompareFace", release, log)
    wait_until(lambda: log == ["CompareFace"])
    with pytest.raises(ApiError) as late, scheduler.slot("DetectFace"):
        pass
    assert late.value.code == "FailedOperation.RequestTimeout"
    assert scheduler.waiting() == {}
    release.set()
    holder.join(5)
    with scheduler.slot("DetectFace"):  # the slot came back
        pass


def test_a_full_queue_answers_request_limit_exceeded_over_http(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One slot and one queue place: of 8 simultaneous CompareFace calls, some are refused at once, in Tencent's
    envelope, and not billed."""
    import base64
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import text
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    from facecloud.runtime import Runtime
    from tests.conftest import _serve, need_data
    from tests.conftest import test_settings as settings_for_tests

    face = base64.b64encode(
        need_data("lfw-dev", "lfw-deepfunneled", "Abel_Pacheco", "Abel_Pacheco_0001.jpg").read_bytes()
    ).decode()
    runtime = Runtime(settings_for_tests(tmp_path, model_work_slots=1, model_work_queue=1))
    serving = _serve(runtime)
    server = next(serving)
    account = server.new_account()

    def call(nonce: int) -> tuple[str, str]:
        client = server.client(account)
        body = {"ImageA": face, "ImageB": face, "Nonce": nonce}  # distinct bodies: the replay guard stays out
        try:
            return "Success", client.call_json("CompareFace", body)["Response"]["RequestId"]
        except TencentCloudSDKException as error:
            assert error.code != "RequestLimitExceeded" or "CompareFace" in error.message
            return error.code, error.requestId

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(call, range(8)))
        codes = [code for code, _ in results]
        assert "RequestLimitExceeded" in codes and "Success" in codes, codes
        assert set(codes) <= {"Success", "RequestLimitExceeded"}, codes
        with runtime.db.session() as session:
            billed = set(session.execute(text("select request_id from billing_usage_entries")).scalars())
        assert billed == {request_id for code, request_id in results if code == "Success"}
    finally:
        serving.close()


def test_light_calls_have_their_own_larger_share_of_slots() -> None:
    """Two light slots beside one heavy: two DetectFace calls run at once, a third waits; heavy work is unchanged."""
    scheduler = ModelWorkScheduler(slots=1, light_slots=2)
    release, log = threading.Event(), []
    running = [occupy(scheduler, "DetectFace", release, log) for _ in range(2)]
    wait_until(lambda: log == ["DetectFace", "DetectFace"])
    third = occupy(scheduler, "DetectFace", release, log)
    heavy = occupy(scheduler, "CompareFace", release, log, heavy=True)
    wait_until(lambda: scheduler.waiting() == {"DetectFace": 1} and len(log) == 3)
    assert log[-1] == "CompareFace"
    release.set()
    for thread in (*running, third, heavy):
        thread.join(5)
    assert sorted(log) == ["CompareFace", "DetectFace", "DetectFace", "DetectFace"]
    assert scheduler.waiting() == {}


def test_light_work_slots_follow_the_settings() -> None:
    default = Pipeline(Settings(workers=2))
    assert default.light_slots == default.slots
    more = Pipeline(Settings(workers=2, light_work_slots=3))
    assert more.light_slots == 3
    assert more.net_pool_size == IMAGES_IN_PARALLEL * more.slots + 3  # a net for every image that may be in work
