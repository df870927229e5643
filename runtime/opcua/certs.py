"""Application certificates: the server's own (made on first start when none
is configured) and the trust list that decides which clients may connect.

The trust list is a folder of client certificates (DER or PEM, any file
name). A client whose certificate is not in it is refused with
Bad_CertificateUntrusted and its certificate is copied to the `rejected`
folder beside the generated certificate, named by its SHA-256 thumbprint:
an administrator who wants that client moves the file into the trust folder
(read again at every connection, no restart).
"""
from __future__ import annotations

import datetime
import hashlib
import os
import socket

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

CERT_NAME = "server_cert.der"
KEY_NAME = "server_key.pem"
VALID_DAYS = 3650


class CertError(Exception):
    pass


def make_certificate(cert_path: str, key_path: str, *, application_uri: str, common_name: str,
                     client: bool = False, days: int = VALID_DAYS) -> None:
    """A self-signed OPC UA application certificate (DER) and its key (PEM, mode 0600)."""
    from asyncua.crypto import cert_gen

    key = cert_gen.generate_private_key()
    host = socket.gethostname()
    names = [x509.UniformResourceIdentifier(application_uri), x509.DNSName(host), x509.DNSName("localhost")]
    usage = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH,
                                                              ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = cert_gen.generate_self_signed_app_certificate(key, common_name, {"organizationName": "gridplc"}, names, usage, days=days)
    for p in (cert_path, key_path):
        d = os.path.dirname(os.path.abspath(p))
        os.makedirs(d, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(cert_gen.dump_private_key_as_pem(key))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.DER))


def server_certificate(cfg) -> tuple[str, str, bool]:
    """(certificate, private key, made now): the configured pair, or the one in
    cfg.pki_dir, made on first start."""
    if cfg.certificate is not None:
        return cfg.certificate, cfg.private_key, False
    cert, key = os.path.join(cfg.pki_dir, CERT_NAME), os.path.join(cfg.pki_dir, KEY_NAME)
    if os.path.isfile(cert) and os.path.isfile(key):
        return cert, key, False
    make_certificate(cert, key, application_uri=cfg.application_uri, common_name="gridplc OPC UA server")
    return cert, key, True


def load_any(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def thumbprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class TrustList:
    def __init__(self, trust_dir: str, rejected_dir: str):
        self.trust_dir = trust_dir
        self.rejected_dir = rejected_dir

    def trusted(self) -> set[str]:
        out = set()
        try:
            names = sorted(os.listdir(self.trust_dir))
        except OSError:
            return out
        for n in names:
            p = os.path.join(self.trust_dir, n)
            try:
                with open(p, "rb") as f:
                    out.add(thumbprint(load_any(f.read())))
            except (OSError, ValueError):
                continue                     # not a certificate: ignored, like any stray file
        return out

    def check(self, cert: x509.Certificate) -> str | None:
        """None when trusted, else the reason (and the certificate is kept in rejected/)."""
        tp = thumbprint(cert)
        now = datetime.datetime.now(datetime.timezone.utc)
        if tp not in self.trusted():
            self._keep(cert, tp)
            return "untrusted"
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return "expired or not yet valid"
        return None

    def _keep(self, cert: x509.Certificate, tp: str) -> None:
        try:
            os.makedirs(self.rejected_dir, exist_ok=True)
            with open(os.path.join(self.rejected_dir, f"{tp}.der"), "wb") as f:
                f.write(cert.public_bytes(serialization.Encoding.DER))
        except OSError:
            pass
