"""Self-signed certificates for tests: the TLS servers they stand up on 127.0.0.1 (a git forge, a
stub Kubernetes API server) and the inputs that must hold a real certificate (a kubeconfig's CA
data). Each certificate is its own CA, so a client trusts it by trusting its PEM."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class SelfSigned:
    pem: str  # the certificate, PEM text: what a client trusts
    key_pem: str = field(repr=False)  # its private key, PKCS 8 PEM, unencrypted

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """The certificate and its key written as ``<stem>-cert.pem`` and ``<stem>-key.pem``
        under ``directory``: the two files ``SSLContext.load_cert_chain`` and git's
        ``GIT_SSL_CAINFO`` (the first) take."""
        cert_path, key_path = directory / f"{stem}-cert.pem", directory / f"{stem}-key.pem"
        cert_path.write_text(self.pem)
        key_path.write_text(self.key_pem)
        return cert_path, key_path


def self_signed(name: str, *more: str) -> SelfSigned:
    """A certificate for ``name`` (its common name) and ``more``, valid from a minute ago for a
    day. Each name is in the subject alternative names as an IP address where it reads as one,
    as a DNS name otherwise: TLS verifies a host against those alone."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in (name, *more)]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SelfSigned(
        pem=cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem=key_pem.decode()
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
