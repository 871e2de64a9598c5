"""The routes' dependencies (propsync.api.deps): the app's service, and HTTP Basic API keys on
the data routes (errors as JSON) and the page (errors as pages); tracking needs none."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.api.conftest import AUTH, TOKEN, batch_url, customers_command

DATA = "/api/customers/registered:nobody"
PAGE = "/customers/registered:nobody"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"ui:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"nobody:s3cret-key").decode()},
        {"Authorization": "Bearer s3cret-key"},
    ],
    ids=["none", "wrong-secret", "unknown-key", "not-basic"],
)
def test_without_a_valid_key_data_routes_answer_401_json_and_the_page_a_401_page(
    app_url: str, headers: dict[str, str]
) -> None:
    data = httpx.get(app_url + DATA, headers=headers)
    assert data.status_code == 401 and data.json()["error"] == "Unauthorized"
    assert data.headers["www-authenticate"] == 'Basic realm="propsync", charset="UTF-8"'
    page = httpx.get(app_url + PAGE, headers=headers)
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert "<h1>401 Unauthorized</h1>" in page.text


def test_a_valid_key_reaches_the_route(app_url: str) -> None:
    for key in (AUTH, ("ops", "other-secret")):
        r = httpx.get(app_url + DATA, auth=key)
        assert r.status_code == 404 and r.json()["error"] == "NotPublished"  # past the auth
    assert httpx.get(app_url + DATA, auth=("ops", AUTH[1])).status_code == 401  # another's secret


def test_tracking_and_health_need_no_key(app_url: str) -> None:
    command = customers_command({"registered": "a"}, {"p": 1})
    r = httpx.post(app_url + batch_url(TOKEN), json={"commands": [command]})
    assert r.status_code == 200 and r.json()["results"] == [{"success": True}]
    assert httpx.get(f"{app_url}/healthz").status_code == 200


def test_the_security_scheme_is_declared_for_the_keyed_routes(app_url: str) -> None:
    spec = httpx.get(f"{app_url}/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {"apiKey": {"type": "http", "scheme": "basic"}}
    assert spec["paths"]["/customers/{customer}"]["get"]["security"] == [{"apiKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
