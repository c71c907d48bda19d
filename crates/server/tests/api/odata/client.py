"""A real OData v4 client (python-odata 0.8.1) against a running parley.

For each of Analytics, Conversations, Sessions, ExecutedSteps, Steps, LiveAgentEscalations, Goals,
GoalSteps, GoalStepMetrics, GoalEvents and GoalCycles: reads the entity type from $metadata, runs a
filtered and ordered query that pages through more rows than one page holds (the server's page
size is lowered with Prefer: odata.maxpagesize), counts, and prints what it saw as JSON for the
Rust test to compare with what it sent.

Usage: client.py SERVICE_URL API_KEY PAGE_SIZE SINCE
"""

import datetime
import json
import sys

from odata import ODataService
from odata.property import PropertyBase


def utc(moment):
    """A date-time as ISO 8601 in UTC, or None."""
    return moment.astimezone(datetime.timezone.utc).isoformat() if moment else None


def described(entity):
    """The property names and the key of an entity type, as the client reflected them."""
    properties = sorted(
        name for name in dir(entity) if isinstance(getattr(entity, name, None), PropertyBase)
    )
    keys = [prop.name for _, prop in entity.__new__(entity).__odata__.primary_key_properties]
    return properties, keys


def read(entity, query, fields):
    """Every row of a query, page by page, with the chosen fields, and its count."""
    rows = []
    for row in query:
        seen = {}
        for name in fields:
            value = getattr(row, name)
            seen[name] = utc(value) if isinstance(value, datetime.datetime) else value
        rows.append(seen)
    properties, keys = described(entity)
    return {"properties": properties, "keys": keys, "rows": rows, "count": query.count()}


def main():
    url, key, page_size, since = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    service = ODataService(
        url,
        reflect_entities=True,
        quiet_progress=True,
        extra_headers={"apikey": key, "Prefer": f"odata.maxpagesize={page_size}"},
    )
    analytics = service.entities["Analytics"]
    properties, keys = described(analytics)

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

    conversations = service.entities["Conversations"]
    inputs = (
        service.query(conversations)
        .filter(conversations.type == "input")
        .filter(conversations.timestamp >= since)
        .order_by(conversations.timestamp.asc())
    )
    fields = ["messageId", "sessionId", "contactId", "source", "inputText", "inputData", "channel", "timestamp"]
    conversations = read(conversations, inputs, fields)

    sessions = service.entities["Sessions"]
    busy = (
        service.query(sessions)
        .filter(sessions.messagesCount >= 2)
        .order_by(sessions.startedAt.desc())
    )
    fields = ["sessionId", "userId", "startedAt", "lastActivityAt", "channel", "rating", "inputsCount", "messagesCount"]
    sessions = read(sessions, busy, fields)

    executed = service.entities["ExecutedSteps"]
    nodes = (
        service.query(executed)
        .filter(executed.type == "node")
        .order_by(executed.timestamp.asc())
    )
    fields = ["executionId", "sessionId", "entityReferenceId", "parentStep", "timestamp"]
    executed = read(executed, nodes, fields)

    steps = service.entities["Steps"]
    catalogue = service.query(steps).order_by(steps.entityReferenceId.asc())
    steps = read(steps, catalogue, ["entityReferenceId", "label", "type"])

    escalations = service.entities["LiveAgentEscalations"]
    done = (
        service.query(escalations)
        .filter(escalations.status == "resolved")
        .order_by(escalations.timestamp.asc())
    )
    escalations = read(escalations, done, ["escalationId", "status", "agentName", "timestamp", "resolvedAt"])

    goals = service.entities["Goals"]
    goals = read(goals, service.query(goals).order_by(goals.name.asc()), ["name", "referenceId"])
    goal_steps = service.entities["GoalSteps"]
    middle = service.query(goal_steps).filter(goal_steps.type == "step").order_by(goal_steps.name.asc())
    goal_steps = read(goal_steps, middle, ["name", "order", "type"])
    metrics = service.entities["GoalStepMetrics"]
    costly = service.query(metrics).filter(metrics.type == "currency").order_by(metrics.value.desc())
    metrics = read(metrics, costly, ["name", "type", "value"])

    events = service.entities["GoalEvents"]
    starts = service.query(events).filter(events.stepType == "start").order_by(events.eventId.asc())
    events = read(events, starts, ["eventId", "goalCycleId", "stepType"])
    cycles = service.entities["GoalCycles"]
    completed = service.query(cycles).filter(cycles.status == "completed").order_by(cycles.goalCycleId.asc())
    cycles = read(cycles, completed, ["goalCycleId", "status", "eventsCount", "completedAt"])

    print(json.dumps({
        "properties": properties,
        "keys": keys,
        "rows": rows,
        "count": count,
        "conversations": conversations,
        "sessions": sessions,
        "executedSteps": executed,
        "steps": steps,
        "escalations": escalations,
        "goals": goals,
        "goalSteps": goal_steps,
        "goalStepMetrics": metrics,
        "goalEvents": events,
        "goalCycles": cycles,
    }))


if __name__ == "__main__":
    main()
