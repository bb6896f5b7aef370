"""The device's HTTP reader reads within a budget: a node, or a man in the middle, that
sends endless data is cut off at a size, so it cannot exhaust a device's memory."""

from __future__ import annotations

import httpx
import pytest
from tuf.api.exceptions import DownloadLengthMismatchError

from liquidfab.cli_device import MAX_DOCUMENT_BYTES, _Http


def _reader(handler) -> _Http:
    http = _Http("http://node.invalid")
    http.client = httpx.Client(
        base_url="http://node.invalid", transport=httpx.MockTransport(handler)
    )
    return http


def _endless(request: httpx.Request) -> httpx.Response:
    def chunks():
        while True:
            yield b"x" * 65536

    return httpx.Response(200, content=chunks())


def test_an_endless_document_is_cut_at_its_budget():
    with pytest.raises(DownloadLengthMismatchError):
        _reader(_endless).fetch("/v1/devices/did:key:z6Mk/poll")


def test_a_target_may_be_larger_than_a_document():
    big = b"y" * (MAX_DOCUMENT_BYTES + 1)
    http = _reader(lambda request: httpx.Response(200, content=big))
    assert http.fetch("/tuf/targets/abc.fw.bin") == big
    with pytest.raises(DownloadLengthMismatchError):
        http.fetch("/tuf/metadata/2.targets.json")


def test_not_found_is_none_and_other_errors_raise():
    assert _reader(lambda request: httpx.Response(404)).fetch("/v1/x") is None
    with pytest.raises(httpx.HTTPStatusError):
        _reader(lambda request: httpx.Response(500)).fetch("/v1/x")
