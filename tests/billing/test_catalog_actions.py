"""The price list's action names (catalog.json), the registry's billed services and the official SDK's actions agree."""

from __future__ import annotations

from facecloud.billing.catalog import load_catalog
from facecloud.gateway.registry import registry


def test_every_billed_action_is_listed_under_its_service():
    """(Tests register actions of their own; only the package's are checked.)"""
    catalog = load_catalog()
    for name, action in registry().items():
        if action.handler.__module__.startswith("facecloud.") and isinstance(action.service, str):
            assert name in catalog.service(action.service).actions, (name, action.service)


def test_every_listed_action_is_served():
    actions = registry()
    for service in load_catalog().services:
        for name in service.actions:
            assert name in actions, (service.id, name)


def test_every_action_of_the_official_sdk_is_served():
    import inspect

    from tencentcloud.iai.v20200303 import iai_client

    sdk = {name for name, _ in inspect.getmembers(iai_client.IaiClient, inspect.isfunction) if name[0].isupper()}
    assert len(sdk) == 35
    assert sdk - set(registry()) == set()
