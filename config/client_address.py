"""Whose address a request comes from: the one rule for login lock-out (django-axes) and API throttles (DRF).

Without a proxy (``VERDICT_PROXY_COUNT=0``, the default) it is the TCP peer, ``REMOTE_ADDR``: whatever a client
writes in X-Forwarded-For is ignored, so forged headers cannot give an attacker a fresh throttle bucket per request.
Behind ``n`` trusted reverse proxies that each append the address they saw, it is the ``n``-th entry from the right
of X-Forwarded-For, the one our outermost proxy wrote; entries further left are the client's own claims. A request
with fewer entries than proxies did not come through them all, and counts by its peer.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_address(request) -> str:
    """The client's address as this deployment can vouch for it (see the module's docstring)."""
    meta = getattr(request, "META", request)  # a Django or DRF request (DRF proxies META)
    peer = meta.get("REMOTE_ADDR", "") or ""
    proxies = settings.VERDICT_PROXY_COUNT
    if proxies <= 0:
        return peer
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        return peer
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # not an address: our proxy did not write it
        return peer
