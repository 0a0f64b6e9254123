"""confluent-kafka (librdkafka's Python binding) against runnel serve.

kafka/confluent_test.go runs it and checks what it prints (one JSON object
a line) against the log directory:

    python3 compat.py admin     AdminClient: metadata, topics made (with
                                configs, validate_only) and deleted,
                                configs described and altered
    python3 compat.py produce   an idempotent Producer, with each codec
    python3 compat.py consume   a group Consumer that reads every record
                                and commits; committed offsets,
                                watermarks, offsets by time, the group
                                listed; a commit outside the group
    python3 compat.py groups    librdkafka's group admin calls (see
                                rdkafka_admin.py): groups listed and
                                described with a live member, offsets
                                listed, altered and deleted, records
                                deleted, groups deleted

Each call prints a "call" event: its name and "ok" or the name of the
error it failed with. The environment names the broker, the topics, the
groups and the records' timestamp (see confluent_test.go).
"""

import base64
import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

import rdkafka_admin

BROKER = os.environ.get("BROKER", "")
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def say(**obj):
    print(json.dumps(obj), flush=True)


def b64(b):
    return None if b is None else base64.b64encode(b).decode()


def error_name(e):
    if isinstance(e, KafkaException) and e.args:
        return e.args[0].name()
    return type(e).__name__


def call(name, f, **extra):
    """Runs f, says how it ended, and returns its result (None if it
    failed)."""
    try:
        r = f()
    except Exception as e:
        say(event="call", name=name, state=error_name(e), **extra)
        return None
    say(event="call", name=name, state="ok", **extra)
    return r


def each(name, futures):
    """Waits for an AdminClient call's futures, one "call" event each."""
    for key, f in futures.items():
        call(name, lambda: f.result(timeout=30), value=str(key))


def admin():
    topic, new_topic = os.environ["TOPIC"], os.environ["NEW_TOPIC"]
    a = AdminClient({"bootstrap.servers": BROKER, "client.id": "confluent-compat"})
    md = a.list_topics(timeout=30)
    say(event="cluster", value=md.cluster_id, offset=md.controller_id,
        names=sorted(f"{b.id} {b.host}:{b.port}" for b in md.brokers.values()))
    say(event="topics", names=sorted(md.topics))
    one = a.list_topics(topic, timeout=30).topics[topic]
    say(event="partitions", name=topic, partitions=sorted(one.partitions),
        names=sorted(f"{p.id} {p.leader} {p.replicas} {p.isrs}" for p in one.partitions.values()))
    missing = a.list_topics("missing", timeout=30).topics["missing"]
    say(event="call", name="metadata of a missing topic", state=missing.error.name() if missing.error else "ok")

    each("create validate_only", a.create_topics([NewTopic(new_topic, 3, 1)], validate_only=True))
    each("create validate_only compacted", a.create_topics([NewTopic("c-compact", 1, 1, config={"cleanup.policy": "compact"})],
                                                           validate_only=True))
    each("create validate_only an existing topic", a.create_topics([NewTopic(topic, 1, 1)], validate_only=True))
    say(event="topics-after-validate", names=sorted(a.list_topics(timeout=30).topics))
    each("create", a.create_topics([NewTopic(new_topic, 3, 1, config={"retention.ms": "60000", "cleanup.policy": "delete"})]))
    each("create again", a.create_topics([NewTopic(new_topic, 3, 1)]))
    each("create with an unknown config", a.create_topics([NewTopic("c-unknown", 1, 1, config={"no.such.config": "1"})]))
    each("create compacted", a.create_topics([NewTopic("c-compact", 1, 1, config={"cleanup.policy": "compact"})]))
    each("create with 3 replicas", a.create_topics([NewTopic("c-replicas", 1, 3)]))
    each("create with a bad name", a.create_topics([NewTopic("bad name", 1, 1)]))
    each("create with the defaults", a.create_topics([NewTopic(new_topic + "-defaults", -1, -1)]))
    say(event="partitions", name=new_topic, partitions=sorted(a.list_topics(new_topic, timeout=30).topics[new_topic].partitions))

    def configs(event, resource):
        for _, f in a.describe_configs([resource]).items():
            for name, entry in sorted(f.result(timeout=30).items()):
                say(event=event, name=name, value=entry.value,
                    names=[f"source={entry.source}", f"read_only={entry.is_read_only}", f"default={entry.is_default}"])

    configs("config", ConfigResource("topic", new_topic))
    each("alter", a.alter_configs([ConfigResource("topic", new_topic, set_config={"retention.ms": "120000"})]))
    each("alter validate_only", a.alter_configs([ConfigResource("topic", new_topic, set_config={"retention.ms": "5"})],
                                                validate_only=True))
    each("alter an unknown config", a.alter_configs([ConfigResource("topic", new_topic, set_config={"no.such.config": "1"})]))
    configs("altered", ConfigResource("topic", new_topic))
    configs("broker-config", ConfigResource("broker", "0"))
    each("describe the configs of a missing topic", a.describe_configs([ConfigResource("topic", "missing")]))

    each("delete", a.delete_topics([new_topic]))
    each("delete a missing topic", a.delete_topics(["missing"]))
    say(event="topics-after-delete", names=sorted(a.list_topics(timeout=30).topics))


def produce():
    topic, ts = os.environ["TOPIC"], int(os.environ["TIMESTAMP"])
    for codec in CODECS:
        p = Producer({"bootstrap.servers": BROKER, "client.id": "confluent-compat", "enable.idempotence": True,
                      "compression.type": codec, "linger.ms": 5})
        delivered = []
        for i, partition in enumerate([0, 1, 0]):
            p.produce(topic, key=f"confluent-{codec}-{i}".encode(), value=None if i == 2 else b"v", partition=partition,
                      timestamp=ts, headers=[("src", b"confluent")] if i == 0 else None,
                      on_delivery=lambda err, m: delivered.append((err, m)))
        left = p.flush(30)
        if left:
            sys.exit(f"{left} records of {codec} not delivered")
        for err, m in delivered:
            say(event="produced", codec=codec, partition=m.partition(), offset=m.offset(),
                error=err.code() if err else 0, key=b64(m.key()))


def consumer(group, **kw):
    conf = {"bootstrap.servers": BROKER, "client.id": "confluent-compat", "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            # Short timings, which the test's server allows.
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 300}
    conf.update(kw)
    return Consumer(conf)


def consume():
    topic, group, ts = os.environ["TOPIC"], os.environ["GROUP"], int(os.environ["TIMESTAMP"])
    want = int(os.environ["WANT"])
    a = AdminClient({"bootstrap.servers": BROKER})
    c = consumer(group)
    c.subscribe([topic])
    got, deadline = 0, time.monotonic() + 60
    while got < want and time.monotonic() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            say(event="consume-error", name=m.error().name())
            continue
        say(event="record", partition=m.partition(), offset=m.offset(), key=b64(m.key()), value=b64(m.value()),
            headers=[[k, b64(v)] for k, v in (m.headers() or [])], timestamp=m.timestamp()[1])
        got += 1
    for g in a.list_groups(group, timeout=30):
        say(event="group", name=g.id, state=g.state, members=len(g.members), value=g.protocol,
            names=[f"{m.client_id} {m.client_host}" for m in g.members])
    committed = call("commit", lambda: c.commit(asynchronous=False))
    for tp in committed or []:
        say(event="commit", partition=tp.partition, offset=tp.offset)
    parts = [TopicPartition(topic, p) for p in (0, 1)]
    for tp in c.committed(parts, timeout=30):
        say(event="committed", partition=tp.partition, offset=tp.offset)
    for tp in c.position(parts):
        say(event="position", partition=tp.partition, offset=tp.offset)
    for tp in parts:
        low, high = c.get_watermark_offsets(tp, timeout=30)
        say(event="watermarks", partition=tp.partition, offset=high, timestamp=low)
    for name, at in [("at", ts), ("after", ts + 1), ("before", 1)]:
        for tp in c.offsets_for_times([TopicPartition(topic, p, at) for p in (0, 1)], timeout=30):
            say(event="offset-for-time", name=name, partition=tp.partition, offset=tp.offset)
    c.close()  # leaves the group
    for g in a.list_groups(group, timeout=30):
        say(event="group-after-close", name=g.id, state=g.state, members=len(g.members))

    # A commit from outside the group's membership (a standalone
    # consumer's), read back.
    other = consumer(os.environ["OTHER_GROUP"])
    call("commit outside the group", lambda: other.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False))
    for tp in other.committed(parts, timeout=30):
        say(event="other-committed", partition=tp.partition, offset=tp.offset)
    other.close()


def groups():
    topic, group, live = os.environ["TOPIC"], os.environ["GROUP"], os.environ["LIVE_GROUP"]
    a = rdkafka_admin.Admin(BROKER)
    say(event="librdkafka", value=rdkafka_admin.version().decode())

    def grouped(name, r):
        """A group call's result: a "call" event for the request, and one
        for each group with its partitions."""
        say(event="call", name=name, state="ok" if r[0] == "ok" else r[1])
        for g in r[1] if r[0] == "ok" else []:
            say(event="call", name=name + " " + g["group"], state=g["error"][0] if g["error"] else "ok",
                names=None if g["partitions"] is None else sorted(f"{t}/{p}@{o} {e}" for t, p, o, e in g["partitions"]))

    m = consumer(live, **{"client.id": "confluent-live"})
    m.subscribe([topic])
    deadline = time.monotonic() + 60
    while not m.assignment() and time.monotonic() < deadline:
        m.poll(0.2)
    say(event="assigned", partitions=sorted(tp.partition for tp in m.assignment()))

    r = a.list_groups()
    say(event="call", name="list groups", state="ok" if r[0] == "ok" else r[1],
        names=sorted(f"{g} {state} simple={simple}" for g, simple, state in r[1][0]) if r[0] == "ok" else None)
    r = a.describe_groups([live, group, "missing"])
    say(event="call", name="describe groups", state="ok" if r[0] == "ok" else r[1])
    for g in r[1] if r[0] == "ok" else []:
        say(event="group", name=g["group"], state=g["state"], value=g["assignor"], members=len(g["members"]),
            error=0 if g["error"] is None else -1,
            names=[f"{mm['client_id']} {mm['host']} " + ",".join(f"{t}/{p}" for t, p, _, _ in mm["assignment"] or [])
                   for mm in g["members"]] + [f"coordinator={g['coordinator']}", f"simple={g['simple']}"])
    grouped("alter the offsets of a live group", a.alter_offsets(live, [(topic, 0, 1)]))
    grouped("delete a live group", a.delete_group(live))
    for _ in range(20):  # the live member's own poll keeps its membership
        m.poll(0.05)
    m.close()

    grouped("list offsets", a.list_offsets(group))
    grouped("list offsets of partitions", a.list_offsets(group, [(topic, 0), (topic, 9), ("missing", 0)]))
    grouped("list the offsets of a missing group", a.list_offsets("missing"))
    grouped("alter offsets", a.alter_offsets(group, [(topic, 0, 2), (topic, 1, 1)]))
    grouped("alter the offset of a missing partition", a.alter_offsets(group, [(topic, 9, 1)]))
    grouped("list offsets after alter", a.list_offsets(group))
    grouped("delete an offset", a.delete_offsets(group, [(topic, 1)]))
    grouped("list offsets after delete", a.list_offsets(group))
    r = a.delete_records([(topic, 0, 1)])
    say(event="call", name="delete records", state="ok" if r[0] == "ok" else r[1],
        names=sorted(f"{t}/{p}@{o} {e}" for t, p, o, e in r[1]) if r[0] == "ok" else None)
    grouped("delete group", a.delete_group(group))
    grouped("delete a missing group", a.delete_group("missing"))
    r = a.list_groups()
    say(event="call", name="list groups after delete", state="ok" if r[0] == "ok" else r[1],
        names=sorted(g for g, _, _ in r[1][0]) if r[0] == "ok" else None)
    a.close()


STEPS = {"admin": admin, "produce": produce, "consume": consume, "groups": groups}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in STEPS:
        sys.exit("usage: python3 compat.py " + "|".join(STEPS))
    STEPS[sys.argv[1]]()
    say(event="done")
