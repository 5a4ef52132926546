"""acmelab.keys: generation, PEM save/load, JWK (RFC 7517) and thumbprint (RFC 7638)."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from acmelab import keys
from acmelab.errors import InputError, KeyExistsError

# RFC 7638 §3.1: the example RSA JWK and its thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.fixture(scope="module")
def generated() -> dict[str, keys.PrivateKey]:
    return {key_type: keys.generate_key(key_type) for key_type in keys.KEY_TYPES}


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_rfc7638_thumbprint_vector() -> None:
    assert keys.thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT


def test_rfc7638_thumbprint_of_the_key_object_matches() -> None:
    # Same key, built from n and e, gives the same thumbprint via public_jwk.
    n = int.from_bytes(_b64(RFC7638_JWK["n"]), "big")
    public = rsa.RSAPublicNumbers(65537, n).public_key()
    assert keys.public_jwk(public) == {"e": "AQAB", "kty": "RSA", "n": RFC7638_JWK["n"]}
    assert keys.thumbprint(public) == RFC7638_THUMBPRINT


@pytest.mark.parametrize("key_type,kind,size,alg", [
    ("rsa2048", rsa.RSAPrivateKey, 2048, "RS256"),
    ("rsa3072", rsa.RSAPrivateKey, 3072, "RS256"),
    ("rsa4096", rsa.RSAPrivateKey, 4096, "RS256"),
    ("ec256", ec.EllipticCurvePrivateKey, 256, "ES256"),
    ("ec384", ec.EllipticCurvePrivateKey, 384, "ES384"),
])
def test_generate_key_types(generated, key_type, kind, size, alg) -> None:
    key = generated[key_type]
    assert isinstance(key, kind)
    assert key.key_size == size
    assert keys.key_type_of(key) == key_type
    assert keys.key_type_of(key.public_key()) == key_type
    assert keys.jws_algorithm(key) == alg
    if isinstance(key, rsa.RSAPrivateKey):
        assert key.private_numbers().public_numbers.e == 65537


def test_default_key_type_is_p256() -> None:
    key = keys.generate_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


def test_unknown_key_type() -> None:
    with pytest.raises(InputError, match="unsupported key type"):
        keys.generate_key("rsa1024")


@pytest.mark.parametrize("key_type", ["rsa2048", "rsa4096"])
def test_rsa_jwk_members(generated, key_type) -> None:
    key = generated[key_type]
    jwk = keys.public_jwk(key)
    assert list(jwk) == ["e", "kty", "n"]
    numbers = key.public_key().public_numbers()
    assert jwk["kty"] == "RSA" and jwk["e"] == "AQAB"
    raw_n = _b64(jwk["n"])
    assert raw_n[0] != 0  # no leading zero octet (RFC 7518 §6.3.1.1)
    assert int.from_bytes(raw_n, "big") == numbers.n
    assert "=" not in jwk["n"]


@pytest.mark.parametrize("key_type,crv,size", [("ec256", "P-256", 32), ("ec384", "P-384", 48)])
def test_ec_jwk_members_padded(generated, key_type, crv, size) -> None:
    key = generated[key_type]
    jwk = keys.public_jwk(key)
    assert list(jwk) == ["crv", "kty", "x", "y"]
    assert jwk["crv"] == crv and jwk["kty"] == "EC"
    numbers = key.public_key().public_numbers()
    assert _b64(jwk["x"]) == numbers.x.to_bytes(size, "big")
    assert _b64(jwk["y"]) == numbers.y.to_bytes(size, "big")


def test_ec_coordinates_with_leading_zero_are_padded() -> None:
    # Search a few keys until x starts with a zero byte (p ~ 1/256 each); use
    # a deterministic scalar sequence so the test is reproducible.
    for scalar in range(1, 5000):
        key = ec.derive_private_key(scalar * 7919 + 12345, ec.SECP256R1())
        if key.public_key().public_numbers().x < 2 ** 248:
            break
    else:  # pragma: no cover
        pytest.fail("no key with a short x coordinate found")
    jwk = keys.public_jwk(key)
    assert len(_b64(jwk["x"])) == 32 and _b64(jwk["x"])[0] == 0
    assert len(jwk["x"]) == 43


def test_thumbprint_matches_hand_computation(generated) -> None:
    key = generated["ec256"]
    jwk = keys.public_jwk(key)
    canonical = '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' % (jwk["x"], jwk["y"])
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    assert keys.thumbprint(key) == expected
    assert keys.thumbprint(key.public_key()) == expected
    assert keys.thumbprint({**jwk, "kid": "ignored", "use": "sig"}) == expected


def test_public_key_from_jwk_round_trip(generated) -> None:
    for key in generated.values():
        public = keys.public_key_from_jwk(keys.public_jwk(key))
        assert keys.public_jwk(public) == keys.public_jwk(key)


@pytest.mark.parametrize("key_type", keys.KEY_TYPES)
def test_save_and_load_round_trip(tmp_path, generated, key_type) -> None:
    key = generated[key_type]
    path = keys.save_private_key(key, tmp_path / "account.key")
    assert path == tmp_path / "account.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8
    loaded = keys.load_private_key(path)
    assert loaded.private_numbers() == key.private_numbers()
    # Same key from PEM bytes and PEM str.
    assert keys.load_private_key(pem).private_numbers() == key.private_numbers()
    assert keys.load_private_key(pem.decode()).private_numbers() == key.private_numbers()
    assert sorted(os.listdir(tmp_path)) == ["account.key"]  # no temp file left


@pytest.mark.parametrize("passphrase", ["correct horse", b"\x00binary\xff", "pässwörd"])
def test_encrypted_save_and_load(tmp_path, generated, passphrase) -> None:
    key = generated["ec384"]
    path = keys.save_private_key(key, tmp_path / "k.pem", passphrase=passphrase)
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.load_private_key(path, passphrase).private_numbers() == key.private_numbers()
    # and cryptography itself can read it with the same passphrase
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    assert serialization.load_pem_private_key(pem, password=secret).private_numbers() == key.private_numbers()


def test_traditional_openssl_pem_is_accepted(generated) -> None:
    key = generated["rsa2048"]
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert keys.load_private_key(pem).private_numbers() == key.private_numbers()


def test_save_refuses_to_overwrite(tmp_path, generated) -> None:
    path = tmp_path / "k.pem"
    keys.save_private_key(generated["ec256"], path)
    before = path.read_bytes()
    with pytest.raises(KeyExistsError):
        keys.save_private_key(generated["ec384"], path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["k.pem"]


def test_overwrite_replaces_atomically(tmp_path, generated) -> None:
    path = tmp_path / "k.pem"
    keys.save_private_key(generated["ec256"], path)
    inode_before = path.stat().st_ino
    keys.save_private_key(generated["ec384"], path, overwrite=True)
    assert keys.key_type_of(keys.load_private_key(path)) == "ec384"
    assert path.stat().st_ino != inode_before  # a new file renamed over the old one
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["k.pem"]


def test_private_key_pem_never_in_errors_or_repr(tmp_path, generated) -> None:
    key = generated["ec256"]
    pem = keys.private_key_pem(key)
    secret_line = pem.decode().splitlines()[1]
    path = keys.save_private_key(key, tmp_path / "k.pem")
    for bad in [lambda: keys.save_private_key(key, path),
                lambda: keys.load_private_key(path, "a passphrase"),
                lambda: keys.load_private_key(pem[:-40])]:
        with pytest.raises(InputError) as info:
            bad()
        assert secret_line not in str(info.value) and secret_line not in repr(info.value)


def test_file_created_during_save_is_not_replaced(tmp_path, generated, monkeypatch) -> None:
    # Someone else creates the key file after our existence check: the final
    # step (a hard link, which fails if the name exists) must still refuse.
    path = tmp_path / "k.pem"
    real_mkstemp = tempfile.mkstemp

    def mkstemp_then_race(*args, **kwargs):
        result = real_mkstemp(*args, **kwargs)
        path.write_bytes(b"the other writer's key")
        return result

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_then_race)
    with pytest.raises(KeyExistsError):
        keys.save_private_key(generated["ec256"], path)
    assert path.read_bytes() == b"the other writer's key"
    assert sorted(os.listdir(tmp_path)) == ["k.pem"]  # our temp file is gone


def test_traditional_encrypted_pem(generated) -> None:
    # "-----BEGIN EC PRIVATE KEY-----" with "Proc-Type: 4,ENCRYPTED" (OpenSSL's legacy form)
    key = generated["ec256"]
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.BestAvailableEncryption(b"legacy"))
    assert b"Proc-Type: 4,ENCRYPTED" in pem
    assert keys.load_private_key(pem, "legacy").private_numbers() == key.private_numbers()
    with pytest.raises(InputError, match="passphrase is required"):
        keys.load_private_key(pem)
    with pytest.raises(InputError, match="wrong passphrase"):
        keys.load_private_key(pem, "not legacy")
