"""Gateway API HTTPRoute beside Ingress, and the Service's session affinity default."""

from __future__ import annotations

from tests.deploy.tools import CHART, by_kind, one, render, render_error, validate_strict

HTTPROUTE = CHART / "ci" / "httproute-values.yaml"
ROUTE_ON = ("gateway.httpRoute.enabled=true", "gateway.httpRoute.parentRefs[0].name=public")


def test_httproute_is_off_by_default() -> None:
    assert not by_kind(render(), "HTTPRoute")


def test_httproute_routes_the_public_port_with_websocket_timeouts() -> None:
    docs = render((HTTPROUTE,))
    validate_strict(docs)
    route = one(docs, "HTTPRoute", "gateway")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    spec = route["spec"]
    assert spec["parentRefs"] == [
        {"name": "public", "namespace": "gateway-system", "sectionName": "https"}
    ]
    assert spec["hostnames"] == ["signals.example.com"]
    (rule,) = spec["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    service = one(docs, "Service", "gateway")
    http_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    assert rule["backendRefs"] == [{"name": service["metadata"]["name"], "port": http_port}]
    # An hour, not the implementations' usual 15 s request timeout that would cut sockets.
    assert rule["timeouts"] == {"request": "3600s", "backendRequest": "3600s"}
    assert rule["sessionPersistence"] == {"sessionName": "qs-gateway", "type": "Cookie"}
    assert not by_kind(docs, "Ingress")


def test_httproute_beside_ingress_and_custom_timeouts() -> None:
    docs = render(
        sets=(
            *ROUTE_ON,
            "gateway.ingress.enabled=true",
            "gateway.httpRoute.timeouts.request=0s",
            "gateway.httpRoute.timeouts.backendRequest=0s",
        )
    )
    assert one(docs, "Ingress", "gateway")
    rule = one(docs, "HTTPRoute", "gateway")["spec"]["rules"][0]
    assert rule["timeouts"] == {"request": "0s", "backendRequest": "0s"}
    assert "sessionPersistence" not in rule, "experimental field only when asked for"


def test_httproute_without_parent_refs_fails_with_a_fix() -> None:
    error = render_error(("gateway.httpRoute.enabled=true",))
    assert "enabled without parentRefs" in error
    assert "gateway.httpRoute.parentRefs" in error


def test_httproute_without_the_gateway_api_fails_with_a_fix() -> None:
    error = render_error(ROUTE_ON, monitoring_api=False)
    assert "does not serve gateway.networking.k8s.io/v1 HTTPRoute" in error
    assert "install the Gateway API CRDs" in error


def test_httproute_with_polling_replicas_needs_session_persistence() -> None:
    error = render_error((*ROUTE_ON, "gateway.replicaCount=2"))
    assert "gateway.httpRoute.sessionPersistence=" in error
    assert "gateway.transports={websocket}" in error
    docs = render(sets=(*ROUTE_ON, "gateway.replicaCount=2", "gateway.transports={websocket}"))
    assert one(docs, "HTTPRoute", "gateway")


def test_schema_rejects_bad_route_values() -> None:
    for sets in (
        ("gateway.httpRoute.timeout.request=1h",),
        ("gateway.httpRoute.timeouts.request=an hour",),
        ("gateway.httpRoute.parentRefs[0].nmae=public",),
        ("gateway.httpRoute.sessionPersistence.type=Sticky",),
        ("gateway.httpRoute.pathPrefix=signals",),
    ):
        assert "values don't meet the specifications" in render_error(sets), sets


def test_service_session_affinity_is_off_by_default() -> None:
    # ClientIP would pin every client behind a proxy that uses the Service IP to one pod.
    for docs in (render(), render((CHART / "ci" / "ha-values.yaml",))):
        assert "sessionAffinity" not in one(docs, "Service", "gateway")["spec"]
    docs = render(sets=("gateway.service.sessionAffinity=ClientIP", "gateway.replicaCount=2"))
    spec = one(docs, "Service", "gateway")["spec"]
    assert spec["sessionAffinity"] == "ClientIP"
    assert spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 3600
    validate_strict(docs)
    assert "values don't meet" in render_error(("gateway.service.sessionAffinity=Cookie",))


def test_polling_replicas_without_any_affinity_fail_with_the_fixes() -> None:
    error = render_error(("gateway.replicaCount=2",))
    assert "nothing pins a client to a pod" in error
    assert "gateway.service.sessionAffinity=ClientIP" in error
    assert "gateway.transports={websocket}" in error
