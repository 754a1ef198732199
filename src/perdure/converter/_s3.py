"""Offloaded payloads in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2 ...).

Four calls (PUT, GET, HEAD, DELETE of one object) signed with AWS Signature Version 4, over
the standard library's HTTP client in a thread: no SDK to install for them. Credentials come
from the arguments or, as the AWS tools read them, from ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` and ``AWS_REGION`` (or
``AWS_DEFAULT_REGION``); ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` name another
endpoint.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import email.utils
import hashlib
import hmac
import http.client
import os
import urllib.parse
from datetime import timedelta

from perdure._errors import ExternalPayloadNotFoundError, PerdureError
from perdure.converter._storage import (
    DEFAULT_DELETE_GRACE,
    DEFAULT_THRESHOLD,
    ExternalStorage,
)

_TIMEOUT = 60.0


class S3Storage(ExternalStorage):
    """Blobs as objects of an S3-compatible bucket, under ``prefix``.

    Args:
        bucket: the bucket's name (it must exist).
        prefix: put before every object's key (``"payloads/"``).
        endpoint_url: the service's URL; default AWS S3 in ``region``
            (``https://s3.<region>.amazonaws.com``). Addressed path-style
            (``<endpoint>/<bucket>/<key>``), which every S3-compatible service takes.
        region: the signing region (default ``$AWS_REGION``, else ``us-east-1``).
        access_key_id, secret_access_key, session_token: default from the environment.

    Example::

        storage = S3Storage("my-payloads", endpoint_url="http://127.0.0.1:9000")
        converter = DataConverter(external_storage=storage)
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        threshold: int = DEFAULT_THRESHOLD,
        delete_grace: timedelta = DEFAULT_DELETE_GRACE,
    ) -> None:
        super().__init__(threshold=threshold, delete_grace=delete_grace)
        env = os.environ.get
        self.bucket = bucket
        self.prefix = prefix
        self.region = region or env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1"
        self.endpoint_url = (
            endpoint_url
            or env("AWS_ENDPOINT_URL_S3")
            or env("AWS_ENDPOINT_URL")
            or f"https://s3.{self.region}.amazonaws.com"
        ).rstrip("/")
        self._access_key = access_key_id or env("AWS_ACCESS_KEY_ID") or ""
        self._secret_key = secret_access_key or env("AWS_SECRET_ACCESS_KEY") or ""
        self._token = session_token or env("AWS_SESSION_TOKEN")
        if not self._access_key or not self._secret_key:
            raise PerdureError(
                "S3Storage needs credentials: pass access_key_id= and secret_access_key=, or "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        self._url = urllib.parse.urlsplit(self.endpoint_url)

    @classmethod
    def from_uri(cls, uri: str) -> S3Storage:
        """The storage an offloaded payload's reference names (``S3Storage.uri``),
        credentials from the environment."""
        parts = urllib.parse.urlsplit(uri)
        query = dict(urllib.parse.parse_qsl(parts.query))
        return cls(
            parts.netloc,
            prefix=urllib.parse.unquote(parts.path.lstrip("/")),
            endpoint_url=query.get("endpoint"),
            region=query.get("region"),
        )

    @property
    def uri(self) -> str:
        query = urllib.parse.urlencode({"endpoint": self.endpoint_url, "region": self.region})
        return f"s3://{self.bucket}/{urllib.parse.quote(self.prefix)}?{query}"

    def __repr__(self) -> str:
        where = f"prefix={self.prefix!r}, endpoint_url={self.endpoint_url!r}"
        return f"S3Storage({self.bucket!r}, {where})"

    async def put(self, key: str, data: bytes) -> None:
        # A PUT of the same bytes again is how an object's write time is refreshed.
        await self._call("PUT", key, data)

    async def get(self, key: str) -> bytes:
        status, _, body = await self._call("GET", key, ok=(200, 404))
        if status == 404:
            raise ExternalPayloadNotFoundError(
                f"Offloaded payload {key} is not in bucket {self.bucket!r} at "
                f"{self.endpoint_url} (no object {self.prefix}{key}): it was deleted, or this "
                "is not the bucket that stored it"
            )
        return body

    async def written_at(self, key: str) -> float | None:
        status, headers, _ = await self._call("HEAD", key, ok=(200, 404))
        if status == 404:
            return None
        modified = headers.get("last-modified")
        return email.utils.parsedate_to_datetime(modified).timestamp() if modified else 0.0

    async def delete(self, key: str) -> None:
        await self._call("DELETE", key, ok=(200, 204, 404))

    async def _call(
        self, method: str, key: str, body: bytes = b"", ok: tuple[int, ...] = (200,)
    ) -> tuple[int, dict[str, str], bytes]:
        if not key.isalnum():
            raise ValueError(f"Not a payload key: {key!r}")
        return await asyncio.to_thread(self._request, method, key, body, ok)

    def _request(
        self, method: str, key: str, body: bytes, ok: tuple[int, ...]
    ) -> tuple[int, dict[str, str], bytes]:
        base = self._url.path.rstrip("/")
        path = f"{base}/{self.bucket}/{urllib.parse.quote(self.prefix + key, safe='/')}"
        headers = self._signed(method, path, body)
        kind = (
            http.client.HTTPSConnection
            if self._url.scheme == "https"
            else http.client.HTTPConnection
        )
        conn = kind(self._url.netloc, timeout=_TIMEOUT)
        try:
            conn.request(method, path, body=body if method == "PUT" else None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            found = {k.lower(): v for k, v in response.getheaders()}
        except OSError as exc:
            raise PerdureError(
                f"S3 storage at {self.endpoint_url} is unreachable ({method} {path}): {exc}",
                cause=exc,
            ) from exc
        finally:
            conn.close()
        if response.status not in ok:
            raise PerdureError(
                f"S3 storage at {self.endpoint_url} refused {method} {path}: HTTP "
                f"{response.status} {data[:300].decode(errors='replace')}"
            )
        return response.status, found, data

    def _signed(self, method: str, path: str, body: bytes) -> dict[str, str]:
        """Headers signed with AWS Signature Version 4 (path-style request, no query)."""
        now = _dt.datetime.now(_dt.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        digest = hashlib.sha256(body).hexdigest()
        headers = {"host": self._url.netloc, "x-amz-content-sha256": digest, "x-amz-date": stamp}
        if self._token:
            headers["x-amz-security-token"] = self._token
        names = sorted(headers)
        canonical = "\n".join(
            [
                method,
                path,
                "",
                *(f"{n}:{headers[n].strip()}" for n in names),
                "",
                ";".join(names),
                digest,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = f"AWS4{self._secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        if method == "PUT":
            headers["content-length"] = str(len(body))
        return headers
