"""Views: sync and async JSON, a CSRF-exempt POST, a CSRF-protected POST and a streaming
response fed by an async iterator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


def index(request: HttpRequest) -> HttpResponse:
    return JsonResponse(
        {
            "framework": "django",
            "method": request.method,
            "path": request.path,
            "query": request.GET.get("q"),
            "scheme": request.scheme,
            "host": request.get_host(),
            "user_agent": request.headers.get("User-Agent"),
        }
    )


async def async_view(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    return JsonResponse({"async": True, "path": request.path})


@csrf_exempt
def echo(request: HttpRequest) -> HttpResponse:
    payload = json.loads(request.body or b"null")
    return JsonResponse({"received": payload, "length": len(request.body)}, status=201)


def protected(request: HttpRequest) -> HttpResponse:
    return HttpResponse("should never run without a CSRF token")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    count = int(request.GET.get("n", "4"))

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(count):
            await asyncio.sleep(0)
            yield b"chunk %d;" % index

    return StreamingHttpResponse(chunks(), content_type="text/plain")
