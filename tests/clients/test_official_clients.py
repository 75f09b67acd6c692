"""Tencent's own clients, unchanged but for the endpoint, against `facecloud serve`: the Node.js SDK (npm, pinned in
tests/clients/package.json) and tccli (tests/clients/tccli-requirements.txt) over HTTP, the Python SDK over HTTPS
(`facecloud serve --tls-cert --tls-key`).

scripts/install.sh --test installs both clients; where one is missing the test skips with the reason, and fails in
CI (FACECLOUD_REQUIRE_SERVICES=1, marker `clients`)."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import ipaddress
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from facecloud.accounts import Credentials
from tests.conftest import REPO, free_port, need_data
from tests.serving import ServerProcess, server_env

pytestmark = pytest.mark.clients

CLIENTS = Path(__file__).parent
TCCLI = REPO / ".venv-tccli" / "bin" / "tccli"


def same_person_pair() -> tuple[Path, Path]:
    lfw = need_data("lfw-dev")
    with (lfw / "pairs.csv").open() as rows:
        first = next(row for row in csv.DictReader(rows) if row["same"] == "1")
    return lfw / first["img1"], lfw / first["img2"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Credentials]]:
    server = ServerProcess(tmp_path_factory.mktemp("clients"), free_port(), server_env()).start()
    try:
        yield server, server.account("clients")
    finally:
        server.stop()


def test_node_sdk(served):
    node = shutil.which("node")
    if node is None or not (CLIENTS / "node_modules" / "tencentcloud-sdk-nodejs").is_dir():
        pytest.skip("Node.js or tests/clients/node_modules missing: run scripts/install.sh --test")
    server, creds = served
    a, b = same_person_pair()
    out = subprocess.run(
        [node, str(CLIENTS / "node_flow.js"), server.endpoint, creds.secret_id, creds.secret_key, str(a), str(b)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    steps = json.loads(out)
    errors = {name: step for name, step in steps.items() if "Error" in step and name != "Forged"}
    assert not errors, errors
    assert len(steps["DetectFace"]["FaceInfos"]) == 1
    assert steps["CompareFace"]["Score"] > 50  # the same person (Score 50 = FAR 1e-4)
    assert steps["SearchPersons"]["Results"][0]["Candidates"][0]["PersonId"] == "p1"
    assert steps["GetPersonListNum"]["PersonNum"] == 1
    assert steps["GetGroupList"]["GroupNum"] == 0
    assert steps["Forged"]["Error"] == "AuthFailure.SignatureFailure"


def tccli(server: ServerProcess, creds: Credentials, action: str, *args: str) -> dict:
    if not TCCLI.exists():
        pytest.skip("tccli missing at .venv-tccli: run scripts/install.sh --test")
    command = [str(TCCLI), "iai", action, "--region", "ap-guangzhou", "--endpoint", server.url, *args]
    keys = {"TENCENTCLOUD_SECRET_ID": creds.secret_id, "TENCENTCLOUD_SECRET_KEY": creds.secret_key}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**server_env(), **keys})
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_tccli(served, tmp_path):
    server, creds = served
    a, b = (base64.b64encode(p.read_bytes()).decode() for p in same_person_pair())
    assert len(tccli(server, creds, "DetectFace", "--Image", a)["FaceInfos"]) == 1
    assert tccli(server, creds, "CompareFace", "--ImageA", a, "--ImageB", b)["Score"] > 50
    tccli(server, creds, "CreateGroup", "--GroupId", "cli", "--GroupName", "cli")
    tccli(server, creds, "CreatePerson", "--GroupId", "cli", "--PersonId", "p1", "--PersonName", "p1", "--Image", a)
    found = tccli(server, creds, "SearchPersons", "--GroupIds", '["cli"]', "--Image", b)
    assert found["Results"][0]["Candidates"][0]["PersonId"] == "p1"
    assert tccli(server, creds, "GetPersonListNum", "--GroupId", "cli")["PersonNum"] == 1
    tccli(server, creds, "DeleteGroup", "--GroupId", "cli")
    assert tccli(server, creds, "GetGroupList")["GroupNum"] == 0


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_serve_with_the_python_sdk(tmp_path):
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.iai.v20200303 import iai_client

    cert, key = self_signed_certificate(tmp_path)
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    server = ServerProcess(tmp_path / "data", free_port(), server_env(), serve_args=tls, scheme="https").start()
    try:
        creds = server.account("tls")
        http = HttpProfile(endpoint=server.endpoint, protocol="https", certification=str(cert))
        client = iai_client.IaiClient(
            credential.Credential(creds.secret_id, creds.secret_key), "ap-guangzhou", ClientProfile(httpProfile=http)
        )
        assert client.call_json("GetGroupList", {})["Response"]["GroupNum"] == 0
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):  # the SDK does check the certificate
            iai_client.IaiClient(
                credential.Credential(creds.secret_id, creds.secret_key),
                "ap-guangzhou",
                ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="https")),
            ).call_json("GetGroupList", {})
    finally:
        server.stop()
