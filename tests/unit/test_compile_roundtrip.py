"""Property: whatever the API server would accept, compile produces a document the proxy's loader accepts.

Hypothesis builds CanaryRoutes and Upstreams within the CRD's schema (mixed-case hosts, every matcher kind,
IPv4/IPv6 CIDRs, weights with two decimals, sticky keys, JWT settings, header sets, version routing, mirror
with a rollout's mirror percent over it); the
compiled document must load from its canonical JSON, keep its checksum, and say the same thing as the spec.
"""

from __future__ import annotations

import ipaddress
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graylane.compile.route import compile_route
from graylane.config.document import canonical_json, document_checksum, load_route_document
from graylane.routing import sticky

LABEL = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
TOKEN = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=12).filter(
    lambda s: s[0].isalnum()
)
VALUE = st.text(string.ascii_letters + string.digits + " -_./:", max_size=20)
HOST = (
    st.lists(LABEL, min_size=1, max_size=3)
    .map(".".join)
    .map(lambda h: "".join(c.upper() if i % 3 == 0 else c for i, c in enumerate(h)))
)
PATH = st.lists(st.text(string.ascii_lowercase + "-_~", min_size=1, max_size=6), max_size=3).map(
    lambda segs: "/" + "/".join(segs)
)
WEIGHT = st.integers(0, 10_000).map(lambda bp: bp / 100)
REGEX = st.sampled_from(["^v[0-9]+$", "beta|gamma", "[a-z]{2,4}", "(?i)canary.*", "x+y?"])
PEM_EC = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEc4w/MMTP4UJlPzAaVvAoGqgBrvUL\n"
    "Y1qE1jyTjppjWWA1YZC4TkkO0y2IAxWlaoKeoEBhOPi7QyC6wEo0zCNaEQ==\n"
    "-----END PUBLIC KEY-----\n"
)


MIRROR = st.fixed_dictionaries(
    {"percent": WEIGHT},
    optional={
        "methods": st.lists(
            st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE"]), max_size=3, unique=True
        ),
        "maxBodyBytes": st.integers(0, 10 * 1024 * 1024),
        "compare": st.one_of(
            st.just({"body": False}),
            st.lists(TOKEN, max_size=3, unique_by=str.lower).map(
                lambda h: {"body": True, "ignoreHeaders": h}
            ),
        ),
    },
)


def string_matcher(name_key: str | None) -> st.SearchStrategy[dict[str, Any]]:
    operator = st.one_of(
        VALUE.map(lambda v: {"exact": v}),
        VALUE.filter(bool).map(lambda v: {"prefix": v}),
        VALUE.filter(bool).map(lambda v: {"suffix": v}),
        REGEX.map(lambda v: {"regex": v}),
        st.just({"present": True}),
        st.lists(VALUE.filter(bool), min_size=1, max_size=3, unique=True).map(lambda v: {"in": v}),
    )
    base = st.fixed_dictionaries({name_key: TOKEN}) if name_key else st.just({})
    return st.tuples(base, operator, st.booleans()).map(
        lambda t: t[0] | t[1] | ({"invert": True} if t[2] else {})
    )


CIDR = st.one_of(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
        lambda t: str(ipaddress.ip_network((t[0], t[1]), strict=False))
    ),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: str(ipaddress.ip_network((t[0], t[1]), strict=False))
    ),
)


def match(with_jwt: bool) -> st.SearchStrategy[dict[str, Any]]:
    parts: dict[str, st.SearchStrategy[Any]] = {
        "headers": st.lists(string_matcher("name"), min_size=1, max_size=3),
        "query": st.lists(string_matcher("name"), min_size=1, max_size=2),
        "cookies": st.lists(string_matcher("name"), min_size=1, max_size=2),
        "sourceCIDRs": st.lists(CIDR, min_size=1, max_size=3, unique=True),
        "sourceCountries": st.lists(st.sampled_from(["GB", "DE", "US", "JP"]), min_size=1, unique=True),
        "methods": st.lists(st.sampled_from(["GET", "POST", "PUT"]), min_size=1, unique=True),
        "path": string_matcher(None),
    }
    if with_jwt:
        parts["jwtClaims"] = st.lists(string_matcher("claim"), min_size=1, max_size=2)
    return st.fixed_dictionaries({}, optional=parts).filter(bool)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, dict[str, Any]], float, float | None]:
    names = draw(st.lists(LABEL.map(lambda s: "up-" + s), min_size=2, max_size=4, unique=True))
    upstreams = {}
    for i, name in enumerate(names):
        target = draw(
            st.one_of(
                st.just({"service": {"name": name, "port": 8000 + i}}),
                st.just({"url": f"http://127.0.0.1:{9000 + i}"}),
            )
        )
        upstreams[name] = {
            "metadata": {
                "name": name,
                "namespace": "shop",
                "labels": {"app": draw(st.sampled_from(["a", "b"]))},
            },
            "spec": target | {"metadata": {"version": f"v{i}"}, "timeoutSeconds": draw(st.integers(1, 3600))},
        }
    with_jwt = draw(st.booleans())
    rule_names = draw(st.lists(LABEL, max_size=4, unique=True))
    spec: dict[str, Any] = {
        "hosts": draw(st.lists(HOST, max_size=3)),
        "pathPrefix": draw(PATH),
        "stable": names[0],
        "canary": names[1],
        "weight": draw(WEIGHT),
        "rules": [
            {"name": n, "to": draw(st.sampled_from(["canary", "stable"])), "match": draw(match(with_jwt))}
            for n in rule_names
        ],
    }
    if with_jwt:
        spec["jwt"] = {"issuer": "https://auth.example.com", "algorithms": ["ES256"], "publicKeys": [PEM_EC]}
    if draw(st.booleans()):
        keys = ["sourceIP", "header:X-User-Id", "cookie:session", "query:u"] + (
            ["jwt:sub"] if with_jwt else []
        )
        spec["sticky"] = {"keys": draw(st.lists(st.sampled_from(keys), min_size=1, unique=True))}
    if draw(st.booleans()):
        spec["versionRouting"] = {"header": "X-Version", "metadataKey": "version",
                                  "upstreamSelector": {"matchLabels": {"app": "a"}}}  # fmt: skip
    if draw(st.booleans()):
        spec["requestHeaders"] = {"canary": {"set": {"X-Feature": draw(VALUE)}}}
    if draw(st.booleans()):
        spec["mirror"] = draw(MIRROR)
    if draw(st.booleans()) and any(not h.replace(".", "").isdigit() for h in spec["hosts"]):
        spec["tls"] = {"secretName": "checkout-tls", "redirectHTTP": draw(st.booleans())}
    route = {
        "metadata": {"name": "checkout", "namespace": "shop", "uid": "u-1", "generation": 7},
        "spec": spec,
    }
    return route, upstreams, draw(st.one_of(st.none(), WEIGHT)), draw(st.one_of(st.none(), WEIGHT))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_compile_output_always_loads(
    case: tuple[dict[str, Any], dict[str, dict[str, Any]], float, float | None],
) -> None:
    route, upstreams, weight, mirror = case
    doc = compile_route(route, upstreams, weight=weight, mirror=mirror)
    text = canonical_json(doc)
    config = load_route_document(text)
    assert config.checksum == doc["checksum"] == document_checksum(doc)
    assert canonical_json(dict(config.document)) == text
    expected = route["spec"]["weight"] if weight is None else weight
    assert sticky.threshold(config.weight) == round(expected * 100)
    assert config.hosts == tuple(dict.fromkeys(h.lower() for h in route["spec"]["hosts"]))
    assert [r.name for r in config.rules] == [r["name"] for r in route["spec"]["rules"]]
    assert set(config.upstreams) >= {route["spec"]["stable"], route["spec"]["canary"]}
    given = route["spec"].get("mirror")
    if given is None and mirror is None:
        assert (
            config.mirror is None and "mirror" not in doc
        )  # unchanged documents for routes that do not mirror
    else:
        assert config.mirror is not None
        assert config.mirror.percent == (given["percent"] if mirror is None else mirror)
        assert config.mirror.methods == tuple((given or {}).get("methods", ()))
        assert config.mirror.compare.body == bool((given or {}).get("compare", {}).get("body"))
    if "tls" in route["spec"]:
        assert config.tls is not None and set(config.tls.hosts) <= set(config.hosts)
        assert config.tls.redirect_http is route["spec"]["tls"]["redirectHTTP"]
    else:
        assert config.tls is None
