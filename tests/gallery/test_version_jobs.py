"""Face model version jobs through the official SDK, on a real server process that is SIGKILLed half-way
through an upgrade: the job resumes after the restart, searches answer during it, Revert puts 2.0 back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from facecloud.gallery.models import FaceCropRow, FaceVectorRow
from facecloud.runtime import Runtime
from tests.conftest import free_port
from tests.conftest import test_settings as settings_in
from tests.gallery.test_gallery_actions import call, error_of, photo
from tests.serving import ServerProcess, server_env

PEOPLE = ("Colin_Powell", "Tony_Blair", "Andre_Agassi", "David_Beckham", "Bill_Gates", "Dick_Cheney")


def start_server(data_dir: Path) -> ServerProcess:
    """`facecloud serve` in its own process; the upgrade worker re-embeds one face per batch and rests 0.4 s
    between batches, so the test can catch the job half-way."""
    env = server_env(version_job_batch="1", version_job_pause_s="0.4", rate_limit_qps="0")
    return ServerProcess(data_dir, free_port(), env).start()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def _db_counts(data_dir: Path) -> tuple[int, int]:
    """(staged 3.0 vectors, stored crops) straight from the database."""
    runtime = Runtime(settings_in(data_dir))
    try:
        with runtime.db.session() as s:
            staged = s.scalar(select(func.count()).select_from(FaceVectorRow).where(FaceVectorRow.version == "3.0"))
            crops = s.scalar(select(func.count()).select_from(FaceCropRow))
        return int(staged or 0), int(crops or 0)
    finally:
        runtime.close()


def _result(client, job_id: str) -> dict:  # type: ignore[no-untyped-def]
    """Polled often: a Get* read is served under a repeated signature, so no spacing is needed."""
    return client.call_json("GetUpgradeGroupFaceModelVersionResult", {"JobId": job_id})["Response"]


def _search(client, person: str) -> dict:  # type: ignore[no-untyped-def]
    return call(client, "SearchFaces", {"GroupIds": ["g"], "Image": photo(person, 2), "MaxPersonNum": 1})


def test_upgrade_survives_a_kill_searches_answer_and_revert_restores(data_dir: Path) -> None:
    runtime = Runtime(settings_in(data_dir))
    creds = runtime.accounts.create("versions")
    runtime.close()
    server = start_server(data_dir)
    try:
        client = server.client(creds)
        call(client, "CreateGroup", {"GroupId": "g", "GroupName": "g", "FaceModelVersion": "2.0"})
        for person in PEOPLE:
            call(
                client,
                "CreatePerson",
                {"GroupId": "g", "PersonId": person, "PersonName": person, "Image": photo(person, 1)},
            )
        assert error_of(client, "UpgradeGroupFaceModelVersion", {"GroupId": "g", "FaceModelVersion": "2.0"}) == (
            "FailedOperation.GroupCannotUpgrade"
        )
        job_id = call(client, "UpgradeGroupFaceModelVersion", {"GroupId": "g", "FaceModelVersion": "3.0"})["JobId"]

        searched = _search(client, "Tony_Blair")  # during the job: the 2.0 vectors answer
        assert searched["Results"][0]["Candidates"][0]["PersonId"] == "Tony_Blair"
        assert searched["FaceModelVersion"] == "2.0"

        deadline = time.time() + 60
        while (progress := _result(client, job_id)["Progress"]) <= 0:
            assert time.time() < deadline
            time.sleep(0.1)
        assert progress < 100, "the job ended before the test could kill it"
        server.kill()
    finally:
        server.stop()

    staged, crops = _db_counts(data_dir)
    assert 0 < staged < len(PEOPLE), staged  # half-way, persisted
    assert crops == len(PEOPLE)

    server = start_server(data_dir)  # the restarted process resumes the job
    try:
        client = server.client(creds)
        first = _result(client, job_id)
        assert first["Progress"] >= 100 * staged / len(PEOPLE) - 0.01  # not started again from zero (2 decimals)
        deadline = time.time() + 120
        while (result := _result(client, job_id))["Status"] == 0:
            assert time.time() < deadline
            time.sleep(0.3)
        assert result["Status"] == 1 and result["Progress"] == 100
        assert result["FromFaceModelVersion"] == "2.0" and result["ToFaceModelVersion"] == "3.0"
        assert result["EndTimestamp"] >= result["StartTime"] > 0 and result["FailedFacesUrl"] == ""
        listed = call(client, "GetUpgradeGroupFaceModelVersionJobList", {"Limit": 10})
        assert listed["JobNum"] == 1 and listed["JobInfos"][0]["JobId"] == job_id
        assert listed["JobInfos"][0]["Status"] == 1

        assert call(client, "GetGroupInfo", {"GroupId": "g"})["FaceModelVersion"] == "3.0"
        upgraded = _search(client, "Colin_Powell")
        assert upgraded["FaceModelVersion"] == "3.0"
        assert upgraded["Results"][0]["Candidates"][0]["PersonId"] == "Colin_Powell"
        assert upgraded["Results"][0]["Candidates"][0]["Score"] > 70  # search scale: 70 = FAR 1% at 10k faces

        time.sleep(1.1)  # the same body as the polled Get: another second, or the replay guard refuses it
        call(client, "RevertGroupFaceModelVersion", {"JobId": job_id})
        assert call(client, "GetGroupInfo", {"GroupId": "g"})["FaceModelVersion"] == "2.0"
        assert _result(client, job_id)["Status"] == 2
        assert _search(client, "Andre_Agassi")["Results"][0]["Candidates"][0]["PersonId"] == "Andre_Agassi"
        assert (
            error_of(client, "RevertGroupFaceModelVersion", {"JobId": job_id}) == "FailedOperation.JobCannnotRollback"
        )
        assert error_of(client, "GetUpgradeGroupFaceModelVersionResult", {"JobId": "nope"}) == (
            "FailedOperation.UpgradeJobIdNotExist"
        )
        call(client, "DeletePerson", {"PersonId": "Dick_Cheney"})
    finally:
        server.stop()
    assert _db_counts(data_dir)[1] == len(PEOPLE) - 1  # a face's crops go with it
