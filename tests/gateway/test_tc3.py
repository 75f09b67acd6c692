"""TC3-HMAC-SHA256 against Tencent's published example (API 3.0 signature docs, CVM DescribeInstances)."""

import hashlib

from facecloud.gateway import tc3

PAYLOAD = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
HEADERS = {"content-type": "application/json; charset=utf-8", "host": "cvm.tencentcloudapi.com"}


def _string_to_sign() -> str:
    payload_hash = hashlib.sha256(PAYLOAD.encode()).hexdigest()
    assert payload_hash == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    canonical = tc3.canonical_request("POST", "/", "", HEADERS, ("content-type", "host"), payload_hash)
    return tc3.string_to_sign("1551113065", "2019-02-25", "cvm", canonical)


def test_string_to_sign_matches_published_example():
    assert _string_to_sign() == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )


def test_signature_matches_published_examples():
    # The Chinese page masks the key with asterisks; the English page uses an EXAMPLE suffix. Both are published.
    to_sign = _string_to_sign()
    assert tc3.signature("Gu5t9xGARNpq86cd98joQYCN3*******", "2019-02-25", "cvm", to_sign) == (
        "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )
    assert tc3.signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "2019-02-25", "cvm", to_sign) == (
        "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_parse_authorization_rejects_garbage():
    import pytest

    from facecloud.errors import ApiError

    for header in ["", "Basic abc", "TC3-HMAC-SHA256 Credential=x/2019-02-25/iai/tc3_request, Signature=zz"]:
        with pytest.raises(ApiError) as err:
            tc3.parse_authorization(header)
        assert err.value.code == "AuthFailure.InvalidAuthorization"


def test_parse_authorization_reads_signed_headers():
    auth = tc3.parse_authorization(
        "TC3-HMAC-SHA256 Credential=AKIDabc/2019-02-25/iai/tc3_request, "
        "SignedHeaders=content-type;host;x-tc-action, Signature=" + "a" * 64
    )
    assert auth.secret_id == "AKIDabc"
    assert auth.signed_headers == ("content-type", "host", "x-tc-action")
