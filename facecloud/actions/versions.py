"""Face model version jobs (free: the price list bills none of them): UpgradeGroupFaceModelVersion,
GetUpgradeGroupFaceModelVersionJobList, GetUpgradeGroupFaceModelVersionResult, RevertGroupFaceModelVersion
(facecloud.gallery.versions runs the jobs)."""

from __future__ import annotations

from facecloud.actions.groups import PageRequest
from facecloud.gallery.versions import JobInfo, failed_faces_url
from facecloud.gateway.registry import ActionContext, TencentRequest, action
from facecloud.vision.versions import DEFAULT_VERSION


class UpgradeGroupFaceModelVersionRequest(TencentRequest):
    GroupId: str
    FaceModelVersion: str | None = None


class JobListRequest(PageRequest):
    pass


class JobIdRequest(TencentRequest):
    JobId: str


@action("UpgradeGroupFaceModelVersion", UpgradeGroupFaceModelVersionRequest)
def upgrade_group(req: UpgradeGroupFaceModelVersionRequest, ctx: ActionContext) -> dict:
    version = req.FaceModelVersion or DEFAULT_VERSION
    return {"JobId": ctx.runtime.version_jobs.start(ctx.account_id, req.GroupId, version)}


def _job_info(job: JobInfo) -> dict:
    return {
        "JobId": job.job_id,
        "GroupId": job.group_id,
        "FromFaceModelVersion": job.from_version,
        "ToFaceModelVersion": job.to_version,
        "StartTime": job.start_ms,
        "Status": job.status,
    }


@action("GetUpgradeGroupFaceModelVersionJobList", JobListRequest)
def job_list(req: JobListRequest, ctx: ActionContext) -> dict:
    jobs, total = ctx.runtime.version_jobs.jobs(ctx.account_id, *req.page(1000))
    return {"JobInfos": [_job_info(j) for j in jobs], "JobNum": total}


@action("GetUpgradeGroupFaceModelVersionResult", JobIdRequest)
def job_result(req: JobIdRequest, ctx: ActionContext) -> dict:
    job = ctx.runtime.version_jobs.result(ctx.account_id, req.JobId)
    return {
        "EndTimestamp": job.end_ms,
        "Progress": job.progress,
        "Status": job.status,
        "StartTime": job.start_ms,
        "FromFaceModelVersion": job.from_version,
        "ToFaceModelVersion": job.to_version,
        "GroupId": job.group_id,
        "FailedFacesUrl": failed_faces_url(job.failed_face_ids),
    }


@action("RevertGroupFaceModelVersion", JobIdRequest)
def revert_group(req: JobIdRequest, ctx: ActionContext) -> dict:
    ctx.runtime.version_jobs.revert(ctx.account_id, req.JobId)
    return {}
