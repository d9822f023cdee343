"""Config -> ssl.SSLContext for the listening sockets.

ALPN offers h2 (when ``--http2``) and http/1.1; the negotiated protocol picks the core
(protocols/negotiate.py). Every file or password problem becomes one ``StartupError`` line that
names the setting, because a traceback from OpenSSL does not say which flag was wrong.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from pronghorn.config import SSL_PROTOCOL_TLS12, Config
from pronghorn.errors import AppImportError, StartupError
from pronghorn.protocols.negotiate import alpn_protocols

__all__ = ["create_ssl_context", "tls_enabled"]

_MIN_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_CERT_REQS = {0: ssl.CERT_NONE, 1: ssl.CERT_OPTIONAL, 2: ssl.CERT_REQUIRED}


class _PasswordNeeded(Exception):
    pass


def _no_password() -> bytes:
    raise _PasswordNeeded


def tls_enabled(config: Config) -> bool:
    return (
        config.ssl_certfile is not None
        or config.ssl_keyfile is not None
        or config.ssl_context_factory is not None
    )


def _readable(path: str, flag: str) -> None:
    file = Path(path)
    if not file.is_file():
        raise StartupError(f"{flag} {path}: no such file")
    try:
        with file.open("rb"):
            pass
    except OSError as exc:
        raise StartupError(f"{flag} {path}: {exc.strerror}") from None


def create_ssl_context(config: Config) -> ssl.SSLContext | None:
    """The server context, or None when TLS is not configured."""
    if not tls_enabled(config):
        return None
    if config.ssl_context_factory is not None:
        context = _from_factory(config, config.ssl_context_factory)
    else:
        context = _default_context(config)
    context.set_alpn_protocols(alpn_protocols(config.http2))
    return context


def _from_factory(config: Config, import_str: str) -> ssl.SSLContext:
    from pronghorn.importer import import_from_string

    flag = "--ssl-context-factory"
    try:
        factory = import_from_string(import_str)
    except AppImportError as exc:
        raise StartupError(f"{flag} {import_str}: {exc}") from None
    if not callable(factory):
        raise StartupError(f"{flag} {import_str}: not a function")

    def default_factory() -> ssl.SSLContext:
        if config.ssl_certfile is None:
            raise StartupError(
                f"{flag}: its default_factory() needs --ssl-certfile (or build the context "
                "inside the factory without calling it)"
            )
        return _default_context(config)

    context = factory(config, default_factory)
    if not isinstance(context, ssl.SSLContext):
        raise StartupError(
            f"{flag} {import_str} returned {type(context).__name__}, not an ssl.SSLContext"
        )
    return context


def _default_context(config: Config) -> ssl.SSLContext:
    if config.ssl_certfile is None:
        raise StartupError("--ssl-keyfile needs --ssl-certfile")
    _readable(config.ssl_certfile, "--ssl-certfile")
    if config.ssl_keyfile is not None:
        _readable(config.ssl_keyfile, "--ssl-keyfile")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _MIN_VERSIONS[config.ssl_min_version]
    if config.ssl_version == SSL_PROTOCOL_TLS12:  # uvicorn's --ssl-version 5 (PROTOCOL_TLSv1_2)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2 and earlier allow renegotiation and compression, both attack surface with no use
    # for a server; TLS 1.3 has neither.
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if config.ssl_ciphers:
        try:
            context.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError:
            raise StartupError(f"--ssl-ciphers {config.ssl_ciphers!r}: no cipher matches") from None
    password = config.ssl_keyfile_password
    try:
        # Without a configured password, OpenSSL would prompt on the terminal and hang a server
        # start; the callback turns an encrypted key into a clear error instead.
        context.load_cert_chain(
            config.ssl_certfile, config.ssl_keyfile, password=password or _no_password
        )
    except _PasswordNeeded:
        raise StartupError("--ssl-keyfile is encrypted: give --ssl-keyfile-password") from None
    except ssl.SSLError as exc:
        key = config.ssl_keyfile or config.ssl_certfile
        if password is not None:
            raise StartupError(
                f"--ssl-keyfile {key}: cannot load the key (wrong --ssl-keyfile-password?)"
            ) from None
        detail = (exc.reason or "not PEM").lower().replace("_", " ")
        raise StartupError(
            f"--ssl-certfile {config.ssl_certfile} / --ssl-keyfile {key}: "
            f"not a PEM certificate and its private key ({detail})"
        ) from None
    context.verify_mode = _CERT_REQS[config.ssl_cert_reqs]
    if config.ssl_ca_certs is not None:
        _readable(config.ssl_ca_certs, "--ssl-ca-certs")
        try:
            context.load_verify_locations(cafile=config.ssl_ca_certs)
        except ssl.SSLError as exc:
            raise StartupError(
                f"--ssl-ca-certs {config.ssl_ca_certs}: not a CA bundle ({exc.reason})"
            ) from None
    elif config.ssl_cert_reqs:
        raise StartupError("--ssl-cert-reqs needs --ssl-ca-certs to verify client certificates")
    return context
