"""kafka-python against runnel serve.

kafka/clients_test.go runs it and checks what it prints (one JSON object a
line) against the log directory:

    python3 compat.py scenario      admin, produce with each codec, group
                                    consume and commit, offsets by time
    python3 compat.py admin         a topic's metadata and offsets, a
                                    seek, a commit read back, the topic
                                    deleted
    python3 compat.py topics        a group member of several topics,
                                    reading every record
    python3 compat.py old-api       a consumer pinned to an old Kafka's
                                    protocol: what each call fails with
    python3 compat.py member        a group member that prints its
                                    assignment until its standard input
                                    closes, then leaves
    python3 compat.py delete-group  list the group's offsets, delete the
                                    group, list the groups
    python3 compat.py admin-more    the rest of KafkaAdminClient: the
                                    cluster, validate_only, topics
                                    described, broker configs, a live
                                    group described, offsets of
                                    partitions, ACL calls refused
    python3 compat.py sasl          authenticate with PLAIN, SCRAM-SHA-256 and
                                    -512, with the password and a wrong one
    python3 compat.py tls           produce and list topics with SCRAM-SHA-512
                                    over TLS, trusting the CA in CA_FILE

The environment names the broker, the topics, the group and the timestamp
of the records it produces (see clients_test.go).
"""

import base64
import json
import os
import select
import sys
import time

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ConfigResource,
                         ConfigResourceType, NewTopic, ResourcePattern, ResourcePatternFilter, ResourceType)
from kafka.structs import OffsetAndMetadata

BROKER = os.environ["BROKER"]
# Every codec kafka-python has; snappy, lz4 and zstd come from the
# python3-snappy, python3-lz4 and python3-zstandard packages.
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def say(**obj):
    print(json.dumps(obj), flush=True)


def b64(b):
    return None if b is None else base64.b64encode(b).decode()


def consumer(**kw):
    return KafkaConsumer(
        bootstrap_servers=BROKER,
        client_id="kafka-python-compat",
        group_id=os.environ["GROUP"],
        # Short timings, which the test's server allows, keep the test
        # short: a killed member is dropped after its session timeout.
        session_timeout_ms=2000,
        heartbeat_interval_ms=300,
        **kw,
    )


def scenario():
    topic, new_topic = os.environ["TOPIC"], os.environ["NEW_TOPIC"]
    ts = int(os.environ["TIMESTAMP"])
    admin = KafkaAdminClient(bootstrap_servers=BROKER, client_id="kafka-python-compat")
    admin.create_topics([NewTopic(new_topic, 2, 1, topic_configs={"retention.ms": "3600000", "min.insync.replicas": "1", "compression.type": "producer"})])
    def configs(event):
        for resp in admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, new_topic)]):
            for res in resp.resources:
                for entry in res[4]:
                    say(event=event, name=entry[0], value=entry[1])

    configs("config")
    # alter_configs is Kafka's AlterConfigs: the topic's whole set.
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, new_topic, configs={"retention.ms": "7200000"})])
    configs("altered")

    for codec in CODECS:
        producer = KafkaProducer(
            bootstrap_servers=BROKER, acks="all", compression_type=None if codec == "none" else codec
        )
        futures = [
            producer.send(topic, partition=0, key=f"kafka-python-{codec}-a".encode(), value=b"v",
                          headers=[("src", b"kafka-python")], timestamp_ms=ts),
            producer.send(topic, partition=0, key=f"kafka-python-{codec}-b".encode(), value=None,
                          timestamp_ms=ts),
        ]
        producer.flush()
        for f in futures:
            md = f.get(timeout=30)
            say(event="produced", codec=codec, partition=md.partition, offset=md.offset, error=0)
        producer.close()

    # Read everything as the group, then commit where it stopped.
    want = int(os.environ["WANT"])
    c = consumer(auto_offset_reset="earliest", enable_auto_commit=False)
    c.subscribe([topic])
    got = 0
    while got < want:
        for _, msgs in c.poll(timeout_ms=1000).items():
            for m in msgs:
                say(event="record", partition=m.partition, offset=m.offset, key=b64(m.key),
                    value=b64(m.value), headers=[[k, b64(v)] for k, v in m.headers],
                    timestamp=m.timestamp)
                got += 1
    c.commit()
    parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
    for tp, ot in c.offsets_for_times({tp: ts for tp in parts}).items():
        say(event="offset-for-time", partition=tp.partition, offset=-1 if ot is None else ot.offset)
    c.close()  # leaves the group

    say(event="groups", names=sorted(g for g, _ in admin.list_consumer_groups()))
    for g in admin.describe_consumer_groups([os.environ["GROUP"]]):
        say(event="group", state=g.state, members=len(g.members))
    admin.close()


def admin_calls():
    # TOPIC's partitions and offsets, a seek to offset 1 of partition 0,
    # GROUP's offset for partition 0 committed as COMMIT and read back,
    # and TOPIC deleted.
    topic = os.environ["TOPIC"]
    admin = KafkaAdminClient(bootstrap_servers=BROKER, client_id="kafka-python-compat")
    for t in admin.describe_topics([topic]):
        say(event="partitions", partitions=sorted(p["partition"] for p in t["partitions"]))
    c = consumer(enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
    c.assign(tps)
    for kind, offsets in [("start", c.beginning_offsets(tps)), ("end", c.end_offsets(tps))]:
        for tp, offset in offsets.items():
            say(event=kind, partition=tp.partition, offset=offset)
    c.pause(*tps[1:])
    c.seek(tps[0], 1)
    while True:
        msgs = c.poll(timeout_ms=1000).get(tps[0])
        if msgs:
            m = msgs[0]
            say(event="record", partition=m.partition, offset=m.offset, value=b64(m.value))
            break
    c.commit({tps[0]: OffsetAndMetadata(int(os.environ["COMMIT"]), "")})
    say(event="committed", partition=0, offset=c.committed(tps[0]))
    c.close()
    admin.delete_topics([topic])
    say(event="topics", names=sorted(admin.list_topics()))
    admin.close()


def topics():
    # Every record of the topics in TOPICS (comma-separated), as a group
    # member.
    want = int(os.environ["WANT"])
    c = consumer(auto_offset_reset="earliest")
    c.subscribe(os.environ["TOPICS"].split(","))
    got = 0
    while got < want:
        for _, msgs in c.poll(timeout_ms=1000).items():
            for m in msgs:
                say(event="record", name=m.topic, partition=m.partition, offset=m.offset, value=b64(m.value))
                got += 1
    c.close()


def old_api():
    # A consumer pinned to an old Kafka's protocol (api_version, which
    # applications often set to skip kafka-python's probe): runnel refuses
    # the old versions of ListOffsets, Fetch and OffsetCommit, and each
    # call must fail on that, not retry until it gives up. Polling stops
    # after 30 s without an error.
    version = tuple(int(x) for x in os.environ["API_VERSION"].split("."))
    tp = TopicPartition(os.environ["TOPIC"], 0)
    c = KafkaConsumer(bootstrap_servers=BROKER, client_id="kafka-python-compat", group_id=os.environ["GROUP"],
                      api_version=version, enable_auto_commit=False, session_timeout_ms=10000,
                      request_timeout_ms=20000)

    def call(name, f):
        try:
            f()
            say(event="call", name=name, state="ok")
        except Exception as e:
            say(event="call", name=name, state=type(e).__name__)

    def poll():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if c.poll(timeout_ms=500):
                return

    call("beginning_offsets", lambda: c.beginning_offsets([tp]))
    c.assign([tp])
    c.seek(tp, 0)
    call("poll", poll)
    call("commit", lambda: c.commit({tp: OffsetAndMetadata(1, "")}))
    c.close()


class PrintAssignment(ConsumerRebalanceListener):
    def __init__(self, topic):
        self.topic = topic

    def on_partitions_revoked(self, revoked):
        pass

    def on_partitions_assigned(self, assigned):
        say(event="assigned", partitions=sorted(tp.partition for tp in assigned if tp.topic == self.topic))


def member():
    topic = os.environ["TOPIC"]
    c = consumer(auto_offset_reset="earliest")
    c.subscribe([topic], listener=PrintAssignment(topic))
    say(event="running")
    while True:
        c.poll(timeout_ms=100)
        ready, _, _ = select.select([sys.stdin], [], [], 0)
        if ready and not sys.stdin.read(1):
            break
    c.close()  # leaves the group
    say(event="left")


def delete_group():
    admin = KafkaAdminClient(bootstrap_servers=BROKER, client_id="kafka-python-compat")
    for tp, om in admin.list_consumer_group_offsets(os.environ["GROUP"]).items():
        say(event="committed", partition=tp.partition, offset=om.offset)
    for group, err in admin.delete_consumer_groups([os.environ["GROUP"]]):
        say(event="deleted", error=err.errno)
    say(event="groups", names=sorted(g for g, _ in admin.list_consumer_groups()))
    admin.close()


def call(name, f, **extra):
    """Runs f and says how it ended: "ok" or the exception's type."""
    try:
        r = f()
    except Exception as e:
        say(event="call", name=name, state=type(e).__name__, **extra)
        return None
    say(event="call", name=name, state="ok", **extra)
    return r


def admin_more():
    # The KafkaAdminClient calls the other steps leave out. TOPIC has
    # two partitions and GROUP commits; LIVE_GROUP gets a live member.
    topic, new_topic, group, live = os.environ["TOPIC"], os.environ["NEW_TOPIC"], os.environ["GROUP"], os.environ["LIVE_GROUP"]
    admin = KafkaAdminClient(bootstrap_servers=BROKER, client_id="kafka-python-compat")
    c = admin.describe_cluster()
    say(event="cluster", value=c["cluster_id"], offset=c["controller_id"],
        names=[f"{b['node_id']} {b['host']}:{b['port']} {b['rack']}" for b in c["brokers"]])
    call("create validate_only", lambda: admin.create_topics([NewTopic(new_topic, 3, 1)], validate_only=True))
    say(event="topics-after-validate", names=sorted(admin.list_topics()))
    # One new topic and one that exists: Kafka makes the new one and
    # refuses the other, which kafka-python raises.
    call("create a new topic and an existing one", lambda: admin.create_topics([NewTopic(new_topic, 3, 1), NewTopic(topic, 1, 1)]))
    say(event="described", names=sorted(f"{t['topic']} {t['error_code']} {len(t['partitions'])} {t['is_internal']}"
                                        for t in admin.describe_topics()))
    say(event="described-missing", names=[f"{t['topic']} {t['error_code']}" for t in admin.describe_topics(["missing"])])
    for resp in admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0")]):
        for res in resp.resources:
            say(event="broker-configs", error=res[0], names=sorted(e[0] for e in res[4]))
    for resp in admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": None})],
                                       include_synonyms=True):
        for res in resp.resources:
            for e in res[4]:
                say(event="topic-config", name=e[0], value=e[1], names=[f"{s[0]}={s[1]} source={s[2]}" for s in e[5]])

    m = KafkaConsumer(bootstrap_servers=BROKER, client_id="kafka-python-live", group_id=live,
                      session_timeout_ms=6000, heartbeat_interval_ms=300)
    m.subscribe([topic])
    deadline = time.monotonic() + 60
    while not m.assignment() and time.monotonic() < deadline:
        m.poll(timeout_ms=200)
    for g in admin.describe_consumer_groups([live]):
        say(event="group", name=g.group, state=g.state, value=g.protocol, members=len(g.members), error=g.error_code,
            names=[f"{mm.client_id} {mm.client_host} " + ",".join(f"{t}/{p}" for t, ps in mm.member_assignment.assignment for p in ps)
                   for mm in g.members])
    say(event="groups", names=sorted(f"{g} {ptype}" for g, ptype in admin.list_consumer_groups(broker_ids=[0])))
    for g in admin.describe_consumer_groups([group], include_authorized_operations=True):
        say(event="group", name=g.group, state=g.state, members=len(g.members), error=g.error_code)
    for err_group, err in admin.delete_consumer_groups([live, "missing"]):
        say(event="call", name="delete group " + err_group, state=err.__name__)
    m.close()

    offsets = admin.list_consumer_group_offsets(group, partitions=[TopicPartition(topic, 0), TopicPartition(topic, 9),
                                                                   TopicPartition("missing", 0)])
    say(event="offsets", names=sorted(f"{tp.topic}/{tp.partition}@{om.offset}" for tp, om in offsets.items()))
    any_acl = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
    call("describe acls", lambda: admin.describe_acls(any_acl))
    call("create acls", lambda: admin.create_acls([ACL("User:x", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                                                       ResourcePattern(ResourceType.TOPIC, topic))]))
    call("delete acls", lambda: admin.delete_acls([any_acl]))
    admin.close()


def sasl():
    # Each mechanism, with the right password and a wrong one.
    for mech in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]:
        for password in [os.environ["PASSWORD"], "wrong"]:
            try:
                admin = KafkaAdminClient(bootstrap_servers=BROKER, client_id="kafka-python-compat",
                                         security_protocol="SASL_PLAINTEXT", sasl_mechanism=mech,
                                         sasl_plain_username=os.environ["USER_NAME"], sasl_plain_password=password)
                say(event="sasl", name=mech, value=password, names=sorted(admin.list_topics()))
                admin.close()
            except Exception as e:  # the wrong password: no broker takes it
                say(event="sasl-refused", name=mech, value=password, state=type(e).__name__)


def tls():
    # SCRAM-SHA-512 over TLS, the server's certificate checked against
    # CA_FILE (and its address, which the certificate names).
    secure = dict(bootstrap_servers=BROKER, client_id="kafka-python-compat",
                  security_protocol="SASL_SSL", ssl_cafile=os.environ["CA_FILE"],
                  sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=os.environ["USER_NAME"],
                  sasl_plain_password=os.environ["PASSWORD"])
    producer = KafkaProducer(**secure)
    producer.send(os.environ["TOPIC"], key=b"k", value=b"over tls").get(timeout=30)
    producer.close()
    admin = KafkaAdminClient(**secure)
    say(event="tls", names=sorted(admin.list_topics()))
    admin.close()


STEPS = {"scenario": scenario, "admin": admin_calls, "topics": topics, "old-api": old_api, "member": member,
         "delete-group": delete_group, "admin-more": admin_more, "sasl": sasl, "tls": tls}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in STEPS:
        sys.exit("usage: python3 compat.py " + "|".join(STEPS))
    STEPS[sys.argv[1]]()
    say(event="done")
