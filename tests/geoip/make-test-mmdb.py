#!/usr/bin/env python3
"""Writes the tiny MaxMind DBs that tests/geoip.rs reads.

    python3 -m pip install mmdb-writer netaddr     # mmdb-writer 0.2.x
    python3 tests/geoip/make-test-mmdb.py          # from the repository root

Writes, next to this script:

  test-country.mmdb        GeoIP2-Country layout: {"country": {"iso_code": "FR"}}
  test-country-code.mmdb   ip-location-db layout:  {"country_code": "FR"}

Both are IPv6 trees (like GeoLite2) holding IPv4 networks in the ::/96 subtree, and map only
documentation and test ranges, so no real address has a country here:

  192.0.2.0/24 FR   198.51.100.0/24 US   203.0.113.0/24 CN   10.77.0.0/24 NL (the testbed)
  2001:db8:1::/48 DE   2001:db8:2::/48 JP

Real MaxMind DBs also alias the IPv4-mapped range ::ffff:0:0/96 to the IPv4 subtree;
mmdb-writer does not, so the GeoIP2-layout file inserts ::ffff:a.b.c.d networks explicitly
to behave the same. The ip-location-db file leaves them out, like files that only hold
::/96.

The output is reproducible: the metadata's build_epoch is SOURCE_DATE_EPOCH (default below)
instead of the time of the run. The files are committed, so tests need none of this.
"""

import os
import time
from pathlib import Path

import mmdb_writer
from mmdb_writer import MMDBWriter
from netaddr import IPNetwork, IPSet

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1735689600"))  # 2025-01-01T00:00:00Z
mmdb_writer.time.time = lambda: EPOCH  # build_epoch is read from time.time()

V4 = {
    "192.0.2.0/24": "FR",  # TEST-NET-1
    "198.51.100.0/24": "US",  # TEST-NET-2
    "203.0.113.0/24": "CN",  # TEST-NET-3
    "10.77.0.0/24": "NL",  # the testbed's network
}
V6 = {
    "2001:db8:1::/48": "DE",
    "2001:db8:2::/48": "JP",
}


def mapped(net: str) -> str:
    """192.0.2.0/24 -> ::ffff:192.0.2.0/120"""
    n = IPNetwork(net)
    return f"::ffff:{n.network}/{96 + n.prefixlen}"


def write(path: Path, record, db_type: str, with_mapped: bool) -> None:
    w = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=db_type,
        languages=["en"],
        description={"en": "secsip test DB: documentation ranges only"},
    )
    for net, cc in V4.items():
        w.insert_network(IPSet([net]), record(cc))
        if with_mapped:
            w.insert_network(IPSet([mapped(net)]), record(cc))
    for net, cc in V6.items():
        w.insert_network(IPSet([net]), record(cc))
    w.to_db_file(str(path))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def main() -> None:
    here = Path(__file__).resolve().parent
    write(here / "test-country.mmdb", lambda cc: {"country": {"iso_code": cc}}, "GeoIP2-Country", True)
    write(here / "test-country-code.mmdb", lambda cc: {"country_code": cc}, "ip-location-db-country", False)


if __name__ == "__main__":
    main()
