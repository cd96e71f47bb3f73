"""The core's certificate checks (graylane.tls): every case of tests/bad_inputs/tls/ is refused with its
reason and field path, good certificates of each supported kind pass, and RFC 6125 name matching."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tlscerts import CORPUS, Ca, secret_object, self_signed

from graylane.tls import hostnames
from graylane.tls.certificate import CONDITIONS, REASONS, CertificateError, parse_certificate
from graylane.tls.secret import check_secret

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir())


def read_case(folder: Path) -> dict[str, str]:
    lines = (folder / "case.txt").read_text().splitlines()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_the_corpus_covers_every_reason() -> None:
    reasons = {read_case(c)["reason"] for c in CASES}
    assert reasons == set(CONDITIONS), reasons
    assert set(REASONS) <= reasons


@pytest.mark.parametrize("folder", CASES, ids=[c.name for c in CASES])
def test_each_bad_certificate_is_refused_with_its_reason_and_path(folder: Path) -> None:
    case = read_case(folder)
    assert case["about"] and case["reason"] in CONDITIONS
    crt, key = folder / "tls.crt", folder / "tls.key"
    if case["reason"] == "not-found":
        assert not crt.exists() and not key.exists()
        return
    if case["reason"] == "host-mismatch":  # a good certificate, for other names
        cert = parse_certificate(crt.read_bytes(), key.read_bytes(), now=NOW)
        assert hostnames.uncovered(cert.dns_names, case["hosts"].split(",")) == [case["path"]]
        return
    with pytest.raises(CertificateError) as caught:
        parse_certificate(crt.read_bytes(), key.read_bytes(), now=NOW)
    assert caught.value.reason == case["reason"]
    assert case["path"] in [e.path for e in caught.value.errors], caught.value.errors
    text = str(caught.value)
    for line in key.read_bytes().splitlines()[1:-1]:  # the key never shows up in a message
        assert line.decode() not in text


@pytest.mark.parametrize("kind", ["ec256", "ec384", "rsa2048", "rsa4096"])
def test_supported_keys_pass_with_their_facts(kind: str) -> None:
    ca = Ca.create()
    crt, key = ca.issue(["a.example.com", "*.b.example.com"], kind=kind)
    cert = parse_certificate(crt, key, now=datetime.datetime.now(datetime.UTC))
    assert cert.dns_names == ("a.example.com", "*.b.example.com")
    expected = {"ec256": "ECDSA P-256", "ec384": "ECDSA P-384"}.get(kind, f"RSA {kind[3:]}")
    assert cert.key_type == expected
    assert len(cert.fingerprint) == 64 and cert.subject == "CN=a.example.com"
    assert key.decode() not in repr(cert) and "PRIVATE" not in repr(cert)


def test_a_chain_with_its_intermediate_passes_and_each_block_is_checked() -> None:
    root = Ca.create()
    inter = Ca.create("intermediate", issuer=root)
    crt, key = inter.issue(["a.example.com"])
    assert crt.count(b"BEGIN CERTIFICATE") == 2
    now = datetime.datetime.now(datetime.UTC)
    assert parse_certificate(crt, key, now=now).dns_names == ("a.example.com",)
    with pytest.raises(CertificateError) as caught:
        parse_certificate(crt, key, now=now + datetime.timedelta(days=365))
    assert caught.value.reason == "expired"
    assert {e.path for e in caught.value.errors} == {"tls.crt[0]", "tls.crt[1]"}


def test_the_clock_is_a_parameter() -> None:
    crt, key = self_signed(["a.example.com"])
    now = datetime.datetime.now(datetime.UTC)
    parse_certificate(crt, key, now=now)
    for when, reason in ((now - datetime.timedelta(days=1), "not-yet-valid"),
                         (now + datetime.timedelta(days=31), "expired")):  # fmt: skip
        with pytest.raises(CertificateError) as caught:
            parse_certificate(crt, key, now=when)
        assert caught.value.reason == reason


def test_every_problem_is_reported_at_once() -> None:
    crt, _ = Ca.create().issue(["a.example.com"], kind="rsa2048")
    with pytest.raises(CertificateError) as caught:
        parse_certificate(crt + b"junk -----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n", b"",
                          now=NOW)  # fmt: skip
    assert [e.path for e in caught.value.errors] == ["tls.crt[1]", "tls.key"]


@pytest.mark.parametrize(
    ("dns_ids", "host", "covered"),
    [
        (["a.example.com"], "a.example.com", True),
        (["A.Example.COM."], "a.example.com", True),
        (["*.example.com"], "a.example.com", True),
        (["*.example.com"], "example.com", False),
        (["*.example.com"], "a.b.example.com", False),
        (["*.com"], "example.com", False),
        (["f*.example.com"], "foo.example.com", False),
        (["*.example.com"], "*.example.com", True),
        (["a.example.com"], "*.example.com", False),
        (["*.a.example.com"], "*.example.com", False),
        ([], "a.example.com", False),
    ],
)
def test_rfc6125_name_matching(dns_ids: list[str], host: str, covered: bool) -> None:
    assert hostnames.covers(dns_ids, host) is covered


def test_sni_lookup_keys() -> None:
    assert hostnames.lookup_keys("A.Example.com.") == ("a.example.com", "*.example.com")
    assert hostnames.lookup_keys("example.com") == ("example.com",)
    assert hostnames.lookup_keys("localhost") == ("localhost",)


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@given(st.lists(LABEL, min_size=2, max_size=5), LABEL)
def test_a_wildcard_covers_exactly_one_label_more(parent: list[str], label: str) -> None:
    domain = ".".join(parent)
    wildcard = f"*.{domain}"
    assert hostnames.covers([wildcard], f"{label}.{domain}")
    assert not hostnames.covers([wildcard], domain)
    assert not hostnames.covers([wildcard], f"{label}.{label}.{domain}")
    assert hostnames.lookup_keys(f"{label}.{domain}")[-1] == wildcard


def test_a_secret_object_is_checked_for_the_route_hosts() -> None:
    crt, key = Ca.create().issue(["a.example.com", "*.b.example.com"])
    secret = secret_object("t", crt, key)
    now = datetime.datetime.now(datetime.UTC)
    ok = check_secret(secret, hosts=["a.example.com", "x.b.example.com"], now=now, name="shop/t")
    assert ok.problem is None and ok.data == secret["data"]  # the base64 as read, for the mirror
    missing = check_secret(secret, hosts=["a.example.com", "c.example.com"], now=now, name="shop/t")
    assert missing.reason == "TLSHostMismatch" and missing.problem is not None
    assert missing.problem.startswith("spec.hosts: 'c.example.com' is not covered by the certificate")
    opaque = check_secret({**secret, "type": "Opaque"}, hosts=[], now=now, name="shop/t")
    assert opaque.reason == "InvalidTLS" and "not kubernetes.io/tls" in str(opaque.problem)
    garbled = check_secret({**secret, "data": {"tls.crt": "%%%"}}, hosts=[], now=now, name="s/t")
    assert garbled.reason == "InvalidTLS" and "data.tls.crt is not base64" in str(garbled.problem)
    late = check_secret(secret, hosts=[], now=now + datetime.timedelta(days=60), name="shop/t")
    assert late.reason == "TLSCertificateExpired"
    assert "spec.tls.secretName: Secret shop/t: tls.crt[0]" in str(late.problem)
    for result in (missing, opaque, garbled, late):
        assert key.decode() not in repr(result)
