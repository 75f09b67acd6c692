"""Fuzzing tenancy: a stranger sends random gallery actions naming another account's groups, persons and faces.
Every answer must be a Tencent envelope that reveals nothing of the owner (an ...NotExist error, or a success
about the stranger's own data), and the owner's gallery must be exactly as it was afterwards."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gallery.test_gallery_actions import photo
from tests.hardening.support import FUZZ_CASES, assert_tencent_answer, call, signed_post

OWN_GROUP, OWN_PERSON = "tenant-owner-group", "tenant-owner-person"


@pytest.fixture(scope="module")
def tenants(server):  # type: ignore[no-untyped-def]
    owner, stranger = server.new_account("owner"), server.new_account("stranger")
    image = photo("Colin_Powell", 1)
    assert "Error" not in call(server.url, owner, "CreateGroup", {"GroupId": OWN_GROUP, "GroupName": "Owner"})
    created = call(
        server.url,
        owner,
        "CreatePerson",
        {"GroupId": OWN_GROUP, "PersonId": OWN_PERSON, "PersonName": "Owner", "Image": image},
    )
    assert "Error" not in created, created
    assert "Error" not in call(server.url, stranger, "CreateGroup", {"GroupId": "stranger-group", "GroupName": "S"})
    return owner, stranger, created["FaceId"], image


def _snapshot(url: str, owner) -> dict:  # type: ignore[no-untyped-def]
    person = call(url, owner, "GetPersonBaseInfo", {"PersonId": OWN_PERSON})
    group = call(url, owner, "GetGroupInfo", {"GroupId": OWN_GROUP})
    members = call(url, owner, "GetPersonListNum", {"GroupId": OWN_GROUP})
    return {
        "person": (person["PersonName"], sorted(person["FaceIds"])),
        "group": group["GroupName"],
        "members": members["PersonNum"],
    }


def _requests(face_id: str, image: str) -> st.SearchStrategy[tuple[str, dict]]:
    group = st.sampled_from([OWN_GROUP, "stranger-group"])
    name = st.text(min_size=1, max_size=20)
    return st.one_of(
        st.tuples(st.just("GetGroupInfo"), st.fixed_dictionaries({"GroupId": st.just(OWN_GROUP)})),
        st.tuples(st.just("ModifyGroup"), st.fixed_dictionaries({"GroupId": st.just(OWN_GROUP), "GroupName": name})),
        st.tuples(st.just("DeleteGroup"), st.fixed_dictionaries({"GroupId": st.just(OWN_GROUP)})),
        st.tuples(st.just("GetPersonList"), st.fixed_dictionaries({"GroupId": st.just(OWN_GROUP)})),
        st.tuples(st.just("GetPersonListNum"), st.fixed_dictionaries({"GroupId": st.just(OWN_GROUP)})),
        st.tuples(st.just("GetPersonBaseInfo"), st.fixed_dictionaries({"PersonId": st.just(OWN_PERSON)})),
        st.tuples(st.just("GetPersonGroupInfo"), st.fixed_dictionaries({"PersonId": st.just(OWN_PERSON)})),
        st.tuples(
            st.just("ModifyPersonBaseInfo"),
            st.fixed_dictionaries({"PersonId": st.just(OWN_PERSON), "PersonName": name}),
        ),
        st.tuples(st.just("DeletePerson"), st.fixed_dictionaries({"PersonId": st.just(OWN_PERSON)})),
        st.tuples(
            st.just("DeletePersonFromGroup"),
            st.fixed_dictionaries({"PersonId": st.just(OWN_PERSON), "GroupId": group}),
        ),
        st.tuples(
            st.just("CopyPerson"),
            st.fixed_dictionaries(
                {"PersonId": st.just(OWN_PERSON), "GroupIds": st.lists(group, min_size=1, max_size=2)}
            ),
        ),
        st.tuples(
            st.just("DeleteFace"),
            st.fixed_dictionaries({"PersonId": st.just(OWN_PERSON), "FaceIds": st.just([face_id])}),
        ),
        st.tuples(
            st.just("CreateFace"), st.fixed_dictionaries({"PersonId": st.just(OWN_PERSON), "Images": st.just([image])})
        ),
        st.tuples(
            st.just("VerifyFace"), st.fixed_dictionaries({"PersonId": st.just(OWN_PERSON), "Image": st.just(image)})
        ),
        st.tuples(
            st.just("SearchFaces"),
            st.fixed_dictionaries({"GroupIds": st.lists(group, min_size=1, max_size=2), "Image": st.just(image)}),
        ),
        st.tuples(st.just("GetGroupList"), st.just({})),
    )


@pytest.fixture(scope="module")
def requests_strategy(tenants):  # type: ignore[no-untyped-def]
    _, _, face_id, image = tenants
    return _requests(face_id, image)


def test_strangers_cannot_see_or_touch_another_accounts_gallery(server, tenants, requests_strategy) -> None:  # type: ignore[no-untyped-def]
    owner, stranger, _, _ = tenants
    before = _snapshot(server.url, owner)

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(request=requests_strategy)
    def stranger_calls(request: tuple[str, dict]) -> None:
        FUZZ_CASES["ids of another account"] += 1
        action, params = request
        reply = signed_post(server.url, stranger, action, json_body(params))
        response = assert_tencent_answer(reply)
        if "Error" in response:
            assert "NotExist" in response["Error"]["Code"] or response["Error"]["Code"].startswith(
                ("InvalidParameter", "RequestLimitExceeded")
            ), (action, response["Error"])
            return
        # The only successes a stranger may get are about its own data.
        assert action in ("GetGroupList", "SearchFaces"), (action, response)
        assert OWN_GROUP not in str(response) and OWN_PERSON not in str(response)

    stranger_calls()
    assert _snapshot(server.url, owner) == before


def json_body(params: dict) -> bytes:
    import json

    return json.dumps(params).encode()
