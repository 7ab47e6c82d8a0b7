"""``in_networks``: whether an address is one of the given addresses or networks."""

from __future__ import annotations

import ipaddress


def in_networks(address: str, networks: list[str]) -> bool:
    """True when ``address`` is one of ``networks`` (addresses or CIDR networks)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


class FilterModule:
    """Filters of the sdwm_ssh role."""

    def filters(self) -> dict[str, object]:
        return {"in_networks": in_networks}
