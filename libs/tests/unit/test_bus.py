from slipway_libs.bus import KafkaDeadLetters, dead_letter_topics


def test_dead_letter_topics_carry_the_installations_prefix() -> None:
    dlq = KafkaDeadLetters(producer=None, topic_prefix="t1.")  # type: ignore[arg-type]
    assert dlq.topic("t1.identity.audit-log") == "t1.dlq.identity.audit-log"
    assert [s.name for s in dead_letter_topics(["identity.audit-log"], "t1.")] == [
        "t1.dlq.identity.audit-log"
    ]
    assert KafkaDeadLetters(producer=None).topic("g") == "dlq.g"  # type: ignore[arg-type]
