"""Test helpers: a throwaway certificate authority, server and client certificates, a token file.

    files = make_tls_files(tmp_path)
    settings = ServiceSettings(tls_cert_file=files.server_cert, tls_key_file=files.server_key,
                               auth_tokens_file=files.tokens)
    security = ClientSecurity(tls_ca_file=files.ca_cert, auth_token=files.token)

The server certificate names localhost, 127.0.0.1 and ::1. Keys are EC P-256 and written
(unencrypted) only under the given directory; nothing here is for production. Needs the
`cryptography` package (imported by this module only).
"""

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_NAMES = [
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a test CA, a server and a client certificate, and an accepted token."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    tokens: Path  # the token file a server reads (auth_tokens_file)
    token: str  # the one token it holds


def make_tls_files(directory: Path) -> TlsFiles:
    """A fresh CA, server and client certificates signed by it, and a one-token file."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("autoperi test CA", ca_key, ca_key.public_key(), None, ca=True)
    paths = {"ca_cert": _write_cert(directory / "ca.pem", ca_cert)}
    for role, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(f"autoperi test {role}", ca_key, key.public_key(), ca_cert, usage=usage)
        paths[f"{role}_cert"] = _write_cert(directory / f"{role}.pem", cert)
        paths[f"{role}_key"] = _write_key(directory / f"{role}-key.pem", key)
    token = secrets.token_urlsafe(24)
    (directory / "tokens").write_text(f"# accepted bearer tokens\n{token}\n")
    return TlsFiles(**paths, tokens=directory / "tokens", token=token)


def _certificate(name, signer_key, public_key, issuer, *, ca=False, usage=None) -> x509.Certificate:
    """A certificate for `name` signed by `signer_key` (self-signed when `issuer` is None)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName(LOCAL_NAMES), critical=False)
    return builder.sign(signer_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return path
