from slipway_contracts import REGISTRY, TOPICS
from slipway_contracts.asyncapi import DOCUMENT_PATH, build_document, render


def test_committed_asyncapi_document_is_current() -> None:
    assert DOCUMENT_PATH.read_text() == render(), "run `make schemas` and commit asyncapi.json"


def test_every_event_is_on_a_declared_topic_and_in_the_document() -> None:
    names = {t.name for t in TOPICS}
    doc = build_document()
    for payload in REGISTRY:
        assert payload.topic in names, payload
        assert payload.event_type in {m["name"] for m in doc["components"]["messages"].values()}
