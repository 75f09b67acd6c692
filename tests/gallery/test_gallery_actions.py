"""Every person/group/face/verify/search action through the official SDK, on real LFW faces (default backends:
SQLite + embedded index)."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20200303 import models

from tests.conftest import need_data

PEOPLE = ("Colin_Powell", "Tony_Blair", "Andre_Agassi", "David_Beckham")


def photo(person: str, number: int) -> str:
    """The number-th (1-based) photo of the person in lfw-dev, base64."""
    path = sorted(need_data("lfw-dev", "lfw-deepfunneled", person).glob("*.jpg"))[number - 1]
    return base64.b64encode(path.read_bytes()).decode()


def side_by_side(*images: str) -> str:
    tiles = [Image.open(io.BytesIO(base64.b64decode(i))).convert("RGB") for i in images]
    canvas = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)))
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, 0))
        x += tile.width
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=95)
    return base64.b64encode(out.getvalue()).decode()


def call(client, action: str, params: dict) -> dict:  # type: ignore[no-untyped-def]
    """A typed SDK call; returns the response as a dict."""
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    return json.loads(getattr(client, action)(request).to_json_string())


def error_of(client, action: str, params: dict) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(TencentCloudSDKException) as info:
        call(client, action, params)
    return info.value.code


@pytest.fixture
def enrolled(client):  # type: ignore[no-untyped-def]
    """Group "staff" with four persons (first photo of each)."""
    call(client, "CreateGroup", {"GroupId": "staff", "GroupName": "Staff", "GroupExDescriptions": ["desk"]})
    for person in PEOPLE:
        call(
            client,
            "CreatePerson",
            {
                "GroupId": "staff",
                "PersonId": person,
                "PersonName": person.replace("_", " "),
                "Gender": 1,
                "Image": photo(person, 1),
                "PersonExDescriptionInfos": [{"PersonExDescriptionIndex": 0, "PersonExDescription": f"desk-{person}"}],
            },
        )
    return client


def test_group_actions_and_their_limits(client) -> None:  # type: ignore[no-untyped-def]
    assert (
        call(
            client,
            "CreateGroup",
            {"GroupId": "g-1", "GroupName": "One", "GroupExDescriptions": ["a", "b"], "Tag": "t"},
        )["FaceModelVersion"]
        == "3.0"
    )
    assert (
        error_of(client, "CreateGroup", {"GroupId": "g-1", "GroupName": "Other"})
        == "InvalidParameterValue.GroupIdAlreadyExist"
    )
    assert (
        error_of(client, "CreateGroup", {"GroupId": "g-2", "GroupName": "One"})
        == "InvalidParameterValue.GroupNameAlreadyExist"
    )
    assert (
        error_of(client, "CreateGroup", {"GroupId": "bad id!", "GroupName": "X"})
        == "InvalidParameterValue.GroupIdIllegal"
    )
    assert (
        error_of(client, "CreateGroup", {"GroupId": "x" * 65, "GroupName": "X"})
        == "InvalidParameterValue.GroupIdTooLong"
    )
    assert (
        error_of(client, "CreateGroup", {"GroupId": "g-3", "GroupName": "N" * 61})
        == "InvalidParameterValue.GroupNameTooLong"
    )
    assert (
        error_of(client, "CreateGroup", {"GroupId": "g-3", "GroupName": "X", "GroupExDescriptions": list("abcdef")})
        == "InvalidParameterValue.GroupExDescriptionsExceed"
    )
    assert (
        error_of(client, "CreateGroup", {"GroupId": "g-3", "GroupName": "X", "GroupExDescriptions": ["a", "a"]})
        == "InvalidParameterValue.GroupExDescriptionsNameIdentical"
    )
    assert (
        error_of(client, "CreateGroup", {"GroupId": "g-3", "GroupName": "X", "FaceModelVersion": "9.0"})
        == "InvalidParameterValue.FaceModelVersionIllegal"
    )
    info = call(client, "GetGroupInfo", {"GroupId": "g-1"})
    assert (info["GroupName"], info["GroupExDescriptions"], info["Tag"]) == ("One", ["a", "b"], "t")
    assert info["CreationTimestamp"] > 1_600_000_000_000
    call(
        client,
        "ModifyGroup",
        {
            "GroupId": "g-1",
            "GroupName": "Renamed",
            "Tag": "u",
            "GroupExDescriptionInfos": [{"GroupExDescriptionIndex": 1, "GroupExDescription": "c"}],
        },
    )
    info = call(client, "GetGroupInfo", {"GroupId": "g-1"})
    assert (info["GroupName"], info["GroupExDescriptions"], info["Tag"]) == ("Renamed", ["a", "c"], "u")
    assert (
        error_of(
            client,
            "ModifyGroup",
            {
                "GroupId": "g-1",
                "GroupExDescriptionInfos": [{"GroupExDescriptionIndex": 1, "GroupExDescription": "a"}],
            },
        )
        == "FailedOperation.DuplicatedGroupDescription"
    )
    for n in range(2, 5):
        call(client, "CreateGroup", {"GroupId": f"g-{n}", "GroupName": f"G{n}"})
    listing = call(client, "GetGroupList", {"Offset": 1, "Limit": 2})
    assert listing["GroupNum"] == 4 and [g["GroupId"] for g in listing["GroupInfos"]] == ["g-2", "g-3"]
    assert error_of(client, "GetGroupList", {"Limit": 1001}) == "InvalidParameterValue.LimitExceed"
    call(client, "DeleteGroup", {"GroupId": "g-1"})
    assert error_of(client, "GetGroupInfo", {"GroupId": "g-1"}) == "InvalidParameterValue.GroupIdNotExist"
    assert error_of(client, "DeleteGroup", {"GroupId": "g-gone"}) == "InvalidParameterValue.GroupIdNotExist"


def test_person_and_face_actions_and_their_limits(enrolled) -> None:  # type: ignore[no-untyped-def]
    client = enrolled
    person = "Colin_Powell"
    assert (
        error_of(
            client,
            "CreatePerson",
            {"GroupId": "staff", "PersonId": person, "PersonName": "again", "Image": photo(person, 2)},
        )
        == "InvalidParameterValue.PersonIdAlreadyExist"
    )
    assert (
        error_of(
            client,
            "CreatePerson",
            {"GroupId": "nowhere", "PersonId": "p", "PersonName": "p", "Image": photo(person, 2)},
        )
        == "InvalidParameterValue.GroupIdNotExist"
    )
    assert (
        error_of(
            client,
            "CreatePerson",
            {"GroupId": "staff", "PersonId": "p", "PersonName": "p", "Image": photo(person, 2), "Gender": 3},
        )
        == "InvalidParameterValue.PersonGenderIllegal"
    )
    base = call(client, "GetPersonBaseInfo", {"PersonId": person})
    assert (base["PersonName"], base["Gender"], len(base["FaceIds"])) == ("Colin Powell", 1, 1)

    added = call(
        client,
        "CreateFace",
        {"PersonId": person, "Images": [photo(person, 2), photo("Tony_Blair", 2), photo(person, 3)]},
    )
    assert added["RetCode"] == [0, -1604, 0] and added["SucIndexes"] == [0, 2] and added["SucFaceNum"] == 2
    assert len(added["SucFaceRects"]) == 2 and added["SucFaceRects"][0]["Width"] > 50
    assert (
        error_of(client, "CreateFace", {"PersonId": person, "Images": [photo(person, n) for n in range(4, 9)]})
        == "InvalidParameterValue.UploadFaceNumExceed"
    )
    assert (
        error_of(
            client,
            "CreateFace",
            {"PersonId": person, "Images": [photo(person, n) for n in range(4, 7)], "FaceMatchThreshold": 0},
        )
        == "InvalidParameterValue.PersonFaceNumExceed"
    )
    call(
        client,
        "CreateFace",
        {"PersonId": person, "Images": [photo(person, 4), photo(person, 5)], "FaceMatchThreshold": 0},
    )
    faces = call(client, "GetPersonBaseInfo", {"PersonId": person})["FaceIds"]
    assert len(faces) == 5
    deleted = call(client, "DeleteFace", {"PersonId": person, "FaceIds": faces[1:] + ["no-such-face"]})
    assert deleted["SucDeletedNum"] == 4
    assert (
        error_of(client, "DeleteFace", {"PersonId": person, "FaceIds": faces[:1]})
        == "InvalidParameterValue.DeleteFaceNumExceed"
    )

    listing = call(client, "GetPersonList", {"GroupId": "staff", "Limit": 2})
    assert listing["PersonNum"] == 4 and listing["FaceNum"] == 4 and len(listing["PersonInfos"]) == 2
    assert listing["PersonInfos"][0]["PersonExDescriptions"] == ["desk-Colin_Powell"]
    counts = call(client, "GetPersonListNum", {"GroupId": "staff"})
    assert (counts["PersonNum"], counts["FaceNum"]) == (4, 4)

    call(client, "ModifyPersonBaseInfo", {"PersonId": person, "PersonName": "General Powell", "Gender": 1})
    assert call(client, "GetPersonBaseInfo", {"PersonId": person})["PersonName"] == "General Powell"
    call(
        client,
        "ModifyPersonGroupInfo",
        {
            "GroupId": "staff",
            "PersonId": person,
            "PersonExDescriptionInfos": [{"PersonExDescriptionIndex": 0, "PersonExDescription": "desk 7"}],
        },
    )
    assert (
        error_of(
            client,
            "ModifyPersonGroupInfo",
            {
                "GroupId": "staff",
                "PersonId": person,
                "PersonExDescriptionInfos": [{"PersonExDescriptionIndex": 3, "PersonExDescription": "x"}],
            },
        )
        == "InvalidParameterValue.PersonExDescriptionInfosExceed"
    )

    call(client, "CreateGroup", {"GroupId": "visitors", "GroupName": "Visitors"})
    copied = call(client, "CopyPerson", {"PersonId": person, "GroupIds": ["visitors"]})
    assert copied["SucGroupNum"] == 1 and copied["SucGroupIds"] == ["visitors"]
    groups = call(client, "GetPersonGroupInfo", {"PersonId": person})
    assert groups["GroupNum"] == 2
    assert {g["GroupId"]: g["PersonExDescriptions"] for g in groups["PersonGroupInfos"]} == {
        "staff": ["desk 7"],
        "visitors": [],
    }

    # Deleting a group keeps persons that are in other groups; removing from the last group deletes the person.
    call(client, "DeleteGroup", {"GroupId": "staff"})
    assert call(client, "GetPersonBaseInfo", {"PersonId": person})["PersonName"] == "General Powell"
    assert error_of(client, "GetPersonBaseInfo", {"PersonId": "Tony_Blair"}) == "InvalidParameterValue.PersonIdNotExist"
    call(client, "DeletePersonFromGroup", {"PersonId": person, "GroupId": "visitors"})
    assert error_of(client, "GetPersonBaseInfo", {"PersonId": person}) == "InvalidParameterValue.PersonIdNotExist"


def test_delete_person_and_membership_errors(enrolled) -> None:  # type: ignore[no-untyped-def]
    client = enrolled
    call(client, "CreateGroup", {"GroupId": "other", "GroupName": "Other"})
    assert (
        error_of(client, "DeletePersonFromGroup", {"PersonId": "Tony_Blair", "GroupId": "other"})
        == "FailedOperation.GroupPersonMapNotExist"
    )
    call(client, "DeletePerson", {"PersonId": "Tony_Blair"})
    assert error_of(client, "DeletePerson", {"PersonId": "Nobody"}) == "InvalidParameterValue.PersonIdNotExist"
    assert error_of(client, "GetPersonBaseInfo", {"PersonId": "Tony_Blair"}) == "InvalidParameterValue.PersonIdNotExist"
    assert call(client, "GetPersonListNum", {"GroupId": "staff"})["PersonNum"] == 3


def test_a_person_joins_at_most_100_groups(server, account, client) -> None:  # type: ignore[no-untyped-def]
    call(client, "CreateGroup", {"GroupId": "home", "GroupName": "Home"})
    call(
        client,
        "CreatePerson",
        {"GroupId": "home", "PersonId": "p", "PersonName": "P", "Image": photo("Bill_Gates", 1)},
    )
    ids = [f"g{n}" for n in range(100)]
    account_id = server.runtime.accounts.find(account.secret_id).id
    for group_id in ids:  # (directly: 100 CreateGroup calls would meet the 50 QPS rate limit)
        server.runtime.gallery.create_group(account_id, group_id, group_id, [], "", "3.0")
    assert (
        error_of(client, "CopyPerson", {"PersonId": "p", "GroupIds": ids})
        == "InvalidParameterValue.GroupNumPerPersonExceed"
    )
    assert call(client, "CopyPerson", {"PersonId": "p", "GroupIds": ids[:99]})["SucGroupNum"] == 99
    assert (
        error_of(client, "CopyPerson", {"PersonId": "p", "GroupIds": ids[99:]})
        == "InvalidParameterValue.GroupNumPerPersonExceed"
    )
    assert (
        error_of(
            client,
            "SearchFaces",
            {"GroupIds": [f"x{n}" for n in range(101)], "Image": photo("Bill_Gates", 2)},
        )
        == "InvalidParameterValue.GroupIdsExceed"
    )


def test_search_actions_find_the_right_person(enrolled) -> None:  # type: ignore[no-untyped-def]
    client = enrolled
    probe = photo("Andre_Agassi", 2)
    faces = call(client, "SearchFaces", {"GroupIds": ["staff"], "Image": probe, "NeedPersonInfo": 1})
    assert faces["FaceNum"] == 4 and faces["FaceModelVersion"] == "3.0"
    (result,) = faces["Results"]
    top = result["Candidates"][0]
    assert result["RetCode"] == 0 and top["PersonId"] == "Andre_Agassi" and top["FaceId"]
    assert top["PersonName"] == "Andre Agassi" and top["Gender"] == 1
    assert top["PersonGroupInfos"] == [{"GroupId": "staff", "PersonExDescriptions": ["desk-Andre_Agassi"]}]
    assert top["Score"] > 70 > result["Candidates"][1]["Score"]
    assert [c["Score"] for c in result["Candidates"]] == sorted(
        (c["Score"] for c in result["Candidates"]), reverse=True
    )

    persons = call(client, "SearchPersons", {"GroupIds": ["staff"], "Image": probe, "MaxPersonNum": 2})
    assert persons["PersonNum"] == 4
    assert [c["PersonId"] for c in persons["Results"][0]["Candidates"]][0] == "Andre_Agassi"
    assert (
        len(persons["Results"][0]["Candidates"]) == 2 and persons["Results"][0]["Candidates"][0]["PersonName"] is None
    )

    # Threshold: SearchFaces keeps scores strictly above it, the ByGroup actions keep scores >= it.
    strict = call(client, "SearchFaces", {"GroupIds": ["staff"], "Image": probe, "FaceMatchThreshold": top["Score"]})
    assert strict["Results"][0]["Candidates"] == []
    grouped = call(
        client,
        "SearchFacesReturnsByGroup",
        {"GroupIds": ["staff"], "Image": probe, "FaceMatchThreshold": top["Score"]},
    )
    (group,) = grouped["ResultsReturnsByGroup"][0]["GroupCandidates"]
    assert group["GroupId"] == "staff" and [c["PersonId"] for c in group["Candidates"]] == ["Andre_Agassi"]
    assert (
        error_of(client, "SearchFaces", {"GroupIds": ["staff"], "Image": probe, "FaceMatchThreshold": 100})
        == "InvalidParameterValue.FaceMatchThresholdIllegal"
    )
    assert (
        error_of(
            client,
            "SearchPersonsReturnsByGroup",
            {"GroupIds": ["staff"], "Image": probe, "MaxPersonNumPerGroup": 11},
        )
        == "InvalidParameterValue.SearchPersonsExceed"
    )

    # Several faces in one image (MaxFaceNum up to 10): one result per face, each finds its own person.
    pair = side_by_side(photo("David_Beckham", 3), photo("Tony_Blair", 3))
    multi = call(client, "SearchPersonsReturnsByGroup", {"GroupIds": ["staff"], "Image": pair, "MaxFaceNum": 10})
    found = {r["GroupCandidates"][0]["Candidates"][0]["PersonId"] for r in multi["ResultsReturnsByGroup"]}
    assert found == {"David_Beckham", "Tony_Blair"}
    assert (
        error_of(client, "SearchFaces", {"GroupIds": ["staff"], "Image": pair, "MaxFaceNum": 11})
        == "InvalidParameterValue"
    )


def test_search_errors(enrolled) -> None:  # type: ignore[no-untyped-def]
    client = enrolled
    probe = photo("Andre_Agassi", 2)
    assert (
        error_of(client, "SearchFaces", {"GroupIds": ["nope"], "Image": probe})
        == "InvalidParameterValue.GroupIdNotExist"
    )
    call(client, "CreateGroup", {"GroupId": "empty", "GroupName": "Empty"})
    assert (
        error_of(client, "SearchPersons", {"GroupIds": ["empty"], "Image": probe})
        == "InvalidParameterValue.NoFaceInGroups"
    )
    call(client, "CreateGroup", {"GroupId": "old", "GroupName": "Old", "FaceModelVersion": "2.0"})
    assert (
        error_of(client, "SearchFaces", {"GroupIds": ["staff", "old"], "Image": probe})
        == "FailedOperation.AcrossVersionsError"
    )
    assert (
        error_of(client, "CopyPerson", {"PersonId": "Andre_Agassi", "GroupIds": ["old"]})
        == "FailedOperation.AcrossVersionsError"
    )


def test_verify_and_unique_person_control(enrolled) -> None:  # type: ignore[no-untyped-def]
    client = enrolled
    same = call(client, "VerifyFace", {"PersonId": "Colin_Powell", "Image": photo("Colin_Powell", 2)})
    other = call(client, "VerifyFace", {"PersonId": "Colin_Powell", "Image": photo("Tony_Blair", 2)})
    assert same["IsMatch"] and same["Score"] >= 60 and not other["IsMatch"] and other["Score"] < 60
    fused = call(client, "VerifyPerson", {"PersonId": "Colin_Powell", "Image": photo("Colin_Powell", 2)})
    assert fused["IsMatch"] and fused["FaceModelVersion"] == "3.0"
    assert (
        error_of(client, "VerifyFace", {"PersonId": "nobody", "Image": photo("Colin_Powell", 2)})
        == "InvalidParameterValue.PersonIdNotExist"
    )
    twin = call(
        client,
        "CreatePerson",
        {
            "GroupId": "staff",
            "PersonId": "twin",
            "PersonName": "Twin",
            "Image": photo("Colin_Powell", 3),
            "UniquePersonControl": 1,
        },
    )
    assert twin["SimilarPersonId"] == "Colin_Powell" and twin["FaceId"] == ""
    assert error_of(client, "GetPersonBaseInfo", {"PersonId": "twin"}) == "InvalidParameterValue.PersonIdNotExist"
    assert (
        error_of(
            client,
            "CreatePerson",
            {
                "GroupId": "staff",
                "PersonId": "t2",
                "PersonName": "T",
                "Image": photo("Colin_Powell", 3),
                "UniquePersonControl": 5,
            },
        )
        == "InvalidParameterValue.UniquePersonControlIllegal"
    )


def test_other_accounts_see_nothing(server, enrolled) -> None:  # type: ignore[no-untyped-def]
    stranger = server.client(server.new_account("stranger"))
    assert error_of(stranger, "GetGroupInfo", {"GroupId": "staff"}) == "InvalidParameterValue.GroupIdNotExist"
    assert (
        error_of(stranger, "GetPersonBaseInfo", {"PersonId": "Tony_Blair"}) == "InvalidParameterValue.PersonIdNotExist"
    )
    assert (
        error_of(stranger, "SearchFaces", {"GroupIds": ["staff"], "Image": photo("Tony_Blair", 2)})
        == "InvalidParameterValue.GroupIdNotExist"
    )
    # The same ids are free in another account, and its search finds only its own person.
    call(stranger, "CreateGroup", {"GroupId": "staff", "GroupName": "Staff"})
    call(
        stranger,
        "CreatePerson",
        {
            "GroupId": "staff",
            "PersonId": "Tony_Blair",
            "PersonName": "Not Tony",
            "Image": photo("Bill_Gates", 1),
        },
    )
    found = call(stranger, "SearchFaces", {"GroupIds": ["staff"], "Image": photo("Tony_Blair", 3)})
    assert found["FaceNum"] == 1
    assert all(c["Score"] < 70 for c in found["Results"][0]["Candidates"])


def test_account_face_limit(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from facecloud.gallery import limits as service

    # Tencent's 50M faces per account, scaled down: this account may hold 2 faces.
    monkeypatch.setattr(service, "MAX_FACES_PER_ACCOUNT", 2)
    call(client, "CreateGroup", {"GroupId": "capped", "GroupName": "Capped"})
    call(
        client,
        "CreatePerson",
        {"GroupId": "capped", "PersonId": "c1", "PersonName": "C", "Image": photo("Tony_Blair", 1)},
    )
    call(client, "CreateFace", {"PersonId": "c1", "Images": [photo("Tony_Blair", 2)]})
    assert error_of(client, "CreateFace", {"PersonId": "c1", "Images": [photo("Tony_Blair", 3)]}) == (
        "InvalidParameterValue.AccountFaceNumExceed"
    )
    assert (
        error_of(
            client,
            "CreatePerson",
            {"GroupId": "capped", "PersonId": "c2", "PersonName": "D", "Image": photo("Colin_Powell", 1)},
        )
        == "InvalidParameterValue.AccountFaceNumExceed"
    )
