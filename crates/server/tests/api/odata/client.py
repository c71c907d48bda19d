"""A real OData v4 client (python-odata 0.8.1) against a running parley.

Reads $metadata, runs a filtered and ordered query that pages through more rows than one page
holds (the server's page size is lowered with Prefer: odata.maxpagesize), counts, and prints
what it saw as JSON for the Rust test to compare with what it ingested.

Usage: client.py SERVICE_URL API_KEY PAGE_SIZE SINCE
"""

import datetime
import json
import sys

from odata import ODataService
from odata.property import PropertyBase


def main():
    url, key, page_size, since = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    service = ODataService(
        url,
        reflect_entities=True,
        quiet_progress=True,
        extra_headers={"apikey": key, "Prefer": f"odata.maxpagesize={page_size}"},
    )
    analytics = service.entities["Analytics"]
    properties = sorted(
        name for name in dir(analytics) if isinstance(getattr(analytics, name, None), PropertyBase)
    )
    keys = [prop.name for _, prop in analytics.__new__(analytics).__odata__.primary_key_properties]

    since = datetime.datetime.fromisoformat(since.replace("Z", "+00:00"))
    query = (
        service.query(analytics)
        .filter(analytics.channel == "web")
        .filter(analytics.timestamp >= since)
        .order_by(analytics.timestamp.desc())
    )
    rows = [
        {
            "inputId": entity.inputId,
            "timestamp": entity.timestamp.astimezone(datetime.timezone.utc).isoformat(),
            "intent": entity.intent,
            "execution": entity.execution,
            "understood": entity.understood,
        }
        for entity in query
    ]
    count = query.count()
    print(json.dumps({"properties": properties, "keys": keys, "rows": rows, "count": count}))


if __name__ == "__main__":
    main()
