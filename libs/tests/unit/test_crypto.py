import pytest

from slipway_libs.crypto import Sealer, SealError, new_key_setting


def test_seal_open_round_trip_bound_to_its_owner() -> None:
    sealer = Sealer.from_setting(new_key_setting("k1"))
    blob = sealer.seal(b"s3cret", aad=b"row-1")
    assert b"s3cret" not in blob
    assert sealer.open(blob, aad=b"row-1") == b"s3cret"
    with pytest.raises(SealError):
        sealer.open(blob, aad=b"row-2")
    with pytest.raises(SealError):
        sealer.open(blob[:-1] + bytes([blob[-1] ^ 1]), aad=b"row-1")


def test_rotation_keeps_old_values_readable_and_reseals_to_the_new_key() -> None:
    old_item = new_key_setting("k1")
    old = Sealer.from_setting(old_item)
    blob = old.seal(b"value")
    rotated = Sealer.from_setting(f"{new_key_setting('k2')},{old_item}")
    assert rotated.open(blob) == b"value"
    assert rotated.needs_reseal(blob)
    moved = rotated.reseal(blob)
    assert rotated.key_id(moved) == "k2" and not rotated.needs_reseal(moved)
    assert rotated.open(moved) == b"value"
    with pytest.raises(SealError, match="unknown sealing key"):
        Sealer.from_setting(new_key_setting("k3")).open(moved)


@pytest.mark.parametrize("setting", ["", "nokey", "k1:", "k1:c2hvcnQ="])
def test_bad_settings_fail_fast(setting: str) -> None:
    with pytest.raises(ValueError):
        Sealer.from_setting(setting)
